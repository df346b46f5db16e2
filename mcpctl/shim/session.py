"""The server's one MCP session and the clients that share it: what the shim connects once a run is ready.

Clients reach the multiplexer through the socket; the multiplexer reaches the server through its stdin
(stdio servers) or the HTTP relay (url servers). What the server says that is no client's (the answer to
the shim's own ping) goes to `on_other`. A session after the first is renewed for the clients that stayed
(`renewal`): their subscriptions are made again, and each is told to fetch the lists again.
"""

from __future__ import annotations

import itertools
import selectors
import time
from collections.abc import Callable

from mcpctl import protocol
from mcpctl.contract import Spec
from mcpctl.errors import ErrorType, Failure
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.shim import era, gate
from mcpctl.shim.listener import FD_RESERVE, Connection, descriptors_left, open_files_limit, refuse
from mcpctl.shim.log import log
from mcpctl.shim.mux import Client, Multiplexer
from mcpctl.shim.renewal import list_changes
from mcpctl.shim.run import Ready, Run
from mcpctl.shim.translate import LEGACY
from mcpctl.states import Readiness

if TYPE_CHECKING:
    from mcpctl.shim.http_relay import HttpRelay

Message = dict[str, Any]


class Session:
    def __init__(
        self,
        spec: Spec,
        selector: selectors.BaseSelector,
        redact: Callable[[str], str],
        clock: Callable[[], float],
    ) -> None:
        """`clock` is the monotonic clock."""
        self.spec, self.selector, self.redact = spec, selector, redact
        self.mux = Multiplexer(spec.name, wait_limit=spec.startup_timeout, clock=clock)
        self.connections = itertools.count(1)
        self.relay: HttpRelay | None = None  # an HTTP server's upstream, while it is ready
        self.on_other: Callable[[Message], None] | None = None
        self.seen: Callable[[Message], None] = gate.ignore  # the max_concurrency gate's view of the server
        self.sessions = 0  # how many runs' sessions were attached
        self.log_again = 0.0  # monotonic: when a shortage of file descriptors is worth a log line again

    def accept(self, sock: Any) -> None:
        """A new client on the socket (refused, with one error line, past `max_clients`)."""
        if len(self.mux.peers) >= self.spec.max_clients:
            refuse(sock, _full(self.spec.name, self.spec.max_clients))
            return
        if descriptors_left() < FD_RESERVE:  # the control socket must still answer `status` and `stop`
            self._short_of_descriptors(sock)
            return
        number, limit = next(self.connections), self.spec.max_message_bytes
        conn = Connection(
            sock, number, self.selector, self._from_client, self.mux.hangup, limit, self._lend, self.spec.name
        )
        self.mux.add(conn)

    def _lend(self, conn: Connection, message: Message, fds: list[int]) -> bool:
        """`mcpctl connect` lends its client's stdio: the client is served through it from now on."""
        from mcpctl.shim import lent

        peer = self.mux.peers.get(conn.number)
        taken = None if peer is None else lent.take(conn, message, fds, self._from_client, self.mux.hangup)
        if peer is None or taken is None:
            return False
        peer.conn = taken
        return True

    def _short_of_descriptors(self, sock: Any) -> None:
        now = time.monotonic()
        if now >= self.log_again:  # not once per attempt: at most once a minute
            log(f"refusing clients: fewer than {FD_RESERVE} file descriptors left (raise the open-files limit)")
            self.log_again = now + 60.0
        refuse(sock, _short(self.spec.name))

    def attach(self, ready: Ready, run: Run | None) -> Callable[[Message], None] | None:
        """The run is ready: connect the session; how to send to the server (None: it speaks no MCP)."""
        send = self._upstream(ready, run)  # the shim's pings go straight: only client requests are gated
        if send is None:
            return None
        self.sessions += 1
        if self.sessions > 1 and ready.era == LEGACY:  # before the waiting requests (an unsubscribe among them)
            for message in self.mux.shared.renewal(self.mux.ids):
                send(message)
        gated, self.seen = gate.gated(send, self.spec.max_concurrency, self._owner)
        self.mux.attach(gated, ready.result, ready.era)
        if (listen := self.mux.bridge.own_listen()) is not None:
            send(listen)
        if self.sessions > 1:
            self._announce(list_changes(ready.result))
        return era.health_send(send, ready.era)

    def _announce(self, messages: list[Message]) -> None:
        for peer in list(self.mux.peers.values()):
            for message in messages:
                if not peer.conn.closed:
                    peer.conn.send(message)

    def detach(self, failure: Failure) -> None:
        """The run is over: every request in flight is answered with `failure`."""
        self.mux.detach(failure)
        if self.relay is not None:
            self.relay.close()
            self.relay = None

    def _upstream(self, ready: Ready, run: Run | None) -> Callable[[Message], None] | None:
        if self.spec.url:
            from mcpctl.shim.http_relay import HttpRelay

            self.relay = HttpRelay(
                self.spec.name,
                self.spec.url,
                ready.session,
                self.selector,
                self._from_server,
                self.redact,
                self.spec.headers,
            )
            return self.relay.send
        if run is not None and self.spec.readiness == Readiness.MCP:
            run.on_message = self._from_server
            return run.send
        return None

    def _from_client(self, conn: Client, message: Message) -> None:
        peer = self.mux.peers.get(conn.number)
        if peer is not None:
            self.mux.from_client(peer, message)

    def _owner(self, upstream_id: Any) -> int:
        route = self.mux.routes.get(upstream_id)
        return route.peer.number if route is not None else 0

    def _from_server(self, message: Message) -> None:
        self.seen(message)
        if self.mux.from_upstream(message):
            return
        self.mux.bridge.note_discover(message.get("result"))  # a modern server's health check refreshes the cache
        if self.on_other is not None:
            self.on_other(message)


def _short(name: str) -> Message:
    """The refusal while fewer than FD_RESERVE descriptors are left: typed, as the one past `max_clients`."""
    failure = Failure.of(ErrorType.TOO_MANY_OPEN_FILES, name=name, limit=open_files_limit())
    return protocol.failure_response(None, failure)


def _full(name: str, cap: int) -> Message:
    """The refusal past `max_clients`: typed as every error of the shim's own, so the CLI can say why."""
    refusal = protocol.failure_response(None, Failure.of(ErrorType.TOO_MANY_CLIENTS, name=name, max_clients=cap))
    refusal["error"]["data"]["max_clients"] = cap
    return refusal
