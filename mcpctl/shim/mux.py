"""The shim's MCP multiplexer: many clients on the unix socket share the one upstream session.

A stdio MCP server serves only the process that spawned it; the shim holds that one initialized
session and lets every client of its socket use it:

- requests get fresh upstream ids (and fresh progress tokens), and their answers go back to the
  client that asked, under the client's own id;
- a client's `initialize` is answered from the shim's own handshake, its `notifications/initialized`
  is swallowed; each client is served in its own protocol era whatever the server's (`bridge`);
- notifications from the server are routed (progress by token, cancellation by id, resource updates
  to the URI's subscribers, log messages by each client's level: `peer_state`) or broadcast (list_changed);
- requests from the server (sampling, roots, elicitation) go to a client that declared the
  capability, preferably one with a request in flight; with none, the shim answers (`asks`);
- a client that goes away has its requests cancelled upstream; when the server goes away, every
  request in flight is answered with a retryable connection_lost error.

While no session is up (starting, backoff) client messages wait, up to a deadline.
Methods under `mcpctl/` are refused here: control is served only on the shim's control socket, so no
MCP client (nor a server's prompt acting through one) can stop or reconfigure the shim.
Every time read goes through the injected `clock`, so tests drive deadlines with a fake one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import field

from mcpctl import protocol
from mcpctl.contract import CONTROL_PREFIX
from mcpctl.errors import ErrorType, Failure
from mcpctl.hints import Any, Protocol
from mcpctl.lean import Record, dataclass
from mcpctl.shim import asks
from mcpctl.shim.bridge import Bridge
from mcpctl.shim.peer_state import PeerState

Message = dict[str, Any]
Send = Callable[[Message], None]
Clock = Callable[[], float]

# How long the shim, as it exits, waits for each client to take what is still queued for it.
LAST_WORDS_TIMEOUT = 0.5
# Upstream progress tokens are ours (one per request), so two clients' equal tokens stay apart.
TOKEN_PREFIX = "mcpctl-"


class Client(Protocol):
    """What the multiplexer needs of a client's connection (`listener.Connection` is one)."""

    number: int
    closed: bool

    def send(self, message: Message) -> None: ...
    def finish(self) -> None: ...  # close once everything queued is written
    def flush_blocking(self, timeout: float) -> None: ...
    def close(self) -> None: ...


@dataclass
class Peer(Record):
    """One client of the socket, as the multiplexer sees it."""

    conn: Client
    capabilities: dict[str, Any] = field(default_factory=dict)
    inflight: dict[Any, int] = field(default_factory=dict)  # the client's request id -> upstream id
    asked: dict[int, Any] = field(default_factory=dict)  # our id for a server request -> the server's id
    last_request: float = 0.0
    hung_up: bool = False
    era: str = ""  # the client's protocol era, once it showed it: legacy (initialize) or modern (the envelope)
    client_info: dict[str, Any] = field(default_factory=dict)
    listens: dict[Any, dict[str, bool]] = field(default_factory=dict)  # listen streams the shim serves itself

    @property
    def number(self) -> int:
        return self.conn.number


@dataclass(frozen=True)
class Route(Record):
    """Where the answer to a request relayed upstream goes back to."""

    peer: Peer
    original_id: Any
    method: str
    token: str | None  # the upstream progress token we gave this request


@dataclass
class Waiting(Record):
    """A client's request held until the server can take it."""

    peer: Peer
    message: Message
    deadline: float


class Multiplexer:
    """Many clients on one upstream session."""

    def __init__(
        self,
        name: str,
        wait_limit: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.name = name
        self.wait_limit = wait_limit  # how long a client message may wait for the session to come up
        self.clock = clock
        self.send_upstream: Send | None = None
        self.init_result: Message | None = None
        self.peers: dict[int, Peer] = {}
        self.routes: dict[int, Route] = {}  # upstream request id -> who asked
        self.tokens: dict[str, tuple[Peer, Any]] = {}  # upstream progress token -> (peer, its token)
        self.waiting: list[Waiting] = []
        self.shared = PeerState()  # each client's subscriptions and log level
        self.ids = itertools.count(1)
        self.answered = 0  # client requests answered by the server, and of those with an error
        self.errors = 0
        self.bridge = Bridge(self)

    # -- the session ---------------------------------------------------------------------------

    def attach(self, send: Send, init_result: Message, era: str = "legacy") -> None:
        """The upstream session is up (in `era`, its handshake's result): let waiting messages through."""
        self.send_upstream, self.init_result = send, init_result
        self.bridge.attach(era, init_result)
        waiting, self.waiting = self.waiting, []
        for item in waiting:
            if not item.peer.conn.closed:
                self.from_client(item.peer, item.message)

    def detach(self, failure: Failure) -> None:
        """The upstream session is gone: answer every request in flight with `failure`."""
        self.send_upstream = None
        routes, self.routes = self.routes, {}
        self.tokens.clear()
        for route in routes.values():
            route.peer.inflight.pop(route.original_id, None)
            self._reply(route.peer, protocol.failure_response(route.original_id, failure))
            self._maybe_finish(route.peer)
        for peer in self.peers.values():
            peer.asked.clear()

    def close(self, failure: Failure) -> None:
        """The shim is ending: answer everything, then let every client go."""
        self.detach(failure)
        self.expire(float("inf"), failure)
        for peer in list(self.peers.values()):
            peer.conn.flush_blocking(LAST_WORDS_TIMEOUT)
            peer.conn.close()

    def expire(self, now: float | None = None, failure: Failure | None = None) -> None:
        """Answer the waiting requests whose deadline passed (by `now`, the clock's time by default)."""
        now = self.clock() if now is None else now
        keep: list[Waiting] = []
        for item in self.waiting:
            if item.deadline > now:
                keep.append(item)
            elif "id" in item.message and "method" in item.message:
                reason = failure or Failure.of(
                    ErrorType.TIMEOUT, timeout=self.wait_limit, detail=f"{self.name} did not become ready"
                )
                self._reply(item.peer, protocol.failure_response(item.message["id"], reason))
        self.waiting = keep

    def next_deadline(self) -> float:
        """When the first waiting message expires, on the clock's scale (inf: none waits)."""
        return min((item.deadline for item in self.waiting), default=float("inf"))

    def take_counts(self) -> tuple[int, int]:
        """Client requests the server answered since the last call, and how many of them were errors."""
        counts = (self.answered, self.errors)
        self.answered = self.errors = 0
        return counts

    # -- clients -------------------------------------------------------------------------------

    def add(self, conn: Client) -> Peer:
        peer = Peer(conn)
        self.peers[conn.number] = peer
        return peer

    def hangup(self, conn: Client) -> None:
        """The client closed its end (or was dropped). A half-closed client still gets its answers."""
        peer = self.peers.get(conn.number)
        if peer is None:
            return
        if not conn.closed:
            peer.hung_up = True
            if not peer.inflight:
                conn.finish()
            return
        del self.peers[conn.number]
        self.waiting = [item for item in self.waiting if item.peer is not peer]
        for upstream_id in peer.inflight.values():
            self._forget(upstream_id)
            self._upstream(_cancelled(upstream_id, "the client disconnected"))
        peer.inflight.clear()
        for server_id in peer.asked.values():
            self._upstream(protocol.error_response(server_id, protocol.INTERNAL_ERROR, "the client disconnected"))
        peer.asked.clear()
        for message in self.shared.leave(peer.number, self.ids):
            self._upstream(message)

    def from_client(self, peer: Peer, message: Message) -> None:
        method = message.get("method")
        if method is None:
            self._client_response(peer, message)
        elif not isinstance(method, str):
            self._reply(peer, protocol.error_response(message.get("id"), protocol.INVALID_REQUEST, "bad method"))
        elif method.startswith(CONTROL_PREFIX):
            if "id" in message:
                self._reply(peer, _not_here(message["id"], method))
        elif "id" not in message:
            self._client_notification(peer, method, message)
        elif not _valid_id(message["id"]):
            self._reply(peer, protocol.error_response(None, protocol.INVALID_REQUEST, "bad request id"))
        elif self.send_upstream is None or self.init_result is None:
            self._wait(peer, message)
        elif (answer := self.bridge.answer(peer, message)) is not None:
            if answer:  # empty: answered on another way (a listen stream's acknowledgement)
                self._reply(peer, answer)
        elif method == "initialize":
            self._initialize(peer, message)
        elif (routed := self.shared.route(peer.number, message)) is None:  # the server has it already
            self._reply(peer, protocol.result_response(message["id"], {}))
        else:
            self._forward_request(peer, method, routed)

    def _initialize(self, peer: Peer, message: Message) -> None:
        params = _params(message)
        capabilities = params.get("capabilities")
        peer.capabilities = capabilities if isinstance(capabilities, dict) else {}
        self._reply(peer, protocol.result_response(message["id"], self._negotiated(params.get("protocolVersion"))))
        if "roots" in peer.capabilities:  # the server was told "no roots" while nobody could answer: ask again
            self._upstream({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})

    def _negotiated(self, wanted: object) -> Message:
        """The server's own initialize result, in the client's protocol version when that is a known one
        no newer than the session's (the messages a client uses exist in the newer version too);
        otherwise in the session's version, and a client that cannot speak it disconnects."""
        assert self.init_result is not None
        session = str(self.init_result.get("protocolVersion", ""))
        if isinstance(wanted, str) and wanted in protocol.KNOWN_VERSIONS and wanted <= session:
            return {**self.init_result, "protocolVersion": wanted}
        return self.init_result

    def _forward_request(self, peer: Peer, method: str, message: Message) -> None:
        upstream_id = next(self.ids)
        token: str | None = None
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        if isinstance(params, dict) and isinstance(meta, dict) and "progressToken" in meta:
            token = f"{TOKEN_PREFIX}{upstream_id}"
            self.tokens[token] = (peer, meta["progressToken"])
            params = {**params, "_meta": {**meta, "progressToken": token}}
        original_id = message["id"]
        previous = peer.inflight.pop(original_id, None)
        if previous is not None:  # a client reusing an id in flight: the older request is forgotten
            self._forget(previous)
        peer.inflight[original_id] = upstream_id
        peer.last_request = self.clock()
        self.routes[upstream_id] = Route(peer, original_id, method, token)
        forwarded = {**message, "id": upstream_id}
        if params is not None:
            forwarded["params"] = params
        self._upstream(self.bridge.outgoing(peer, forwarded))

    def _client_notification(self, peer: Peer, method: str, message: Message) -> None:
        if method == "notifications/initialized":
            return  # the shim's session was initialized long ago
        if method == "notifications/cancelled":
            params = _params(message)
            original_id = params.get("requestId")
            upstream_id = peer.inflight.pop(original_id, None) if _valid_id(original_id) else None
            if upstream_id is None:
                self.bridge.forgets(peer, original_id)  # perhaps a listen stream the shim serves itself
                return
            self._forget(upstream_id)
            self._upstream({**message, "params": {**params, "requestId": upstream_id}})
            self._maybe_finish(peer)
            return
        if self.send_upstream is None:
            self._wait(peer, message)
            return
        self._upstream(message)

    def _client_response(self, peer: Peer, message: Message) -> None:
        """A client's answer to a request the server sent it."""
        our_id = message.get("id")
        server_id = peer.asked.pop(our_id, None) if isinstance(our_id, int) else None
        if server_id is not None:
            self._upstream({**message, "id": server_id})

    # -- the server ----------------------------------------------------------------------------

    def from_upstream(self, message: Message) -> bool:
        """Route one message from the server; False when it is not a client's (the shim's own ping)."""
        method = message.get("method")
        if method is None:
            return self._server_response(message)
        if "id" in message:
            self._server_request(str(method), message)
        else:
            self._server_notification(str(method), message)
        return True

    def _server_response(self, message: Message) -> bool:
        upstream_id = message.get("id")
        route = self._forget(upstream_id) if isinstance(upstream_id, int) else None
        if route is None:
            return False
        peer = route.peer
        peer.inflight.pop(route.original_id, None)
        self.answered += 1
        self.errors += "error" in message
        self._reply(peer, self.bridge.incoming(route, {**message, "id": route.original_id}))
        self._maybe_finish(peer)
        return True

    def _server_notification(self, method: str, message: Message) -> None:
        params = _params(message)
        if method == "notifications/progress":
            target = self.tokens.get(str(params.get("progressToken")))
            if target is not None:
                peer, token = target
                self._reply(peer, {**message, "params": {**params, "progressToken": token}})
            return
        if method == "notifications/cancelled":  # the server gave up on a request it sent a client
            for peer in self.peers.values():
                for our_id, server_id in list(peer.asked.items()):
                    if server_id == params.get("requestId"):
                        del peer.asked[our_id]
                        self._reply(peer, {**message, "params": {**params, "requestId": our_id}})
            return
        if self.bridge.notification(method, message):
            return
        for peer in list(self.peers.values()):  # list_changed, log messages, resource updates
            if self.shared.delivers(peer.number, method, params) and self.bridge.delivers(peer, method):
                self._reply(peer, message)

    def _server_request(self, method: str, message: Message) -> None:
        if method == "ping":
            self._upstream(protocol.result_response(message["id"], {}))
            return
        peer = asks.pick(self.peers.values(), method)
        if peer is None:
            self._upstream(self.bridge.unanswerable(message["id"], method))
            return
        our_id = next(self.ids)
        peer.asked[our_id] = message["id"]
        self._reply(peer, {**message, "id": our_id})

    # -- helpers -------------------------------------------------------------------------------

    def _forget(self, upstream_id: int) -> Route | None:
        """A request upstream is over (answered, cancelled, abandoned): drop its route and progress token."""
        route = self.routes.pop(upstream_id, None)
        if route is not None and route.token is not None:
            self.tokens.pop(route.token, None)
        return route

    def _wait(self, peer: Peer, message: Message) -> None:
        self.waiting.append(Waiting(peer, message, self.clock() + self.wait_limit))

    def _reply(self, peer: Peer, message: Message) -> None:
        if not peer.conn.closed:
            peer.conn.send(message)

    def _upstream(self, message: Message) -> None:
        if self.send_upstream is not None:
            self.send_upstream(message)

    def _maybe_finish(self, peer: Peer) -> None:
        if peer.hung_up and not peer.inflight:
            peer.conn.finish()


def _params(message: Message) -> dict[str, Any]:
    params = message.get("params")
    return params if isinstance(params, dict) else {}


def _valid_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _cancelled(request_id: int, reason: str) -> Message:
    params = {"requestId": request_id, "reason": reason}
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}


def _not_here(request_id: Any, method: str) -> Message:
    message = f"{method} is a control method of mcpctl: the shared MCP session does not serve it"
    return protocol.error_response(request_id, protocol.METHOD_NOT_FOUND, message)
