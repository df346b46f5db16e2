"""`share = "per-client"`: each client of the socket gets a server process of its own, under the same shim.

A client's process is spawned on its `initialize`, which is forwarded as the process's handshake (so the
server sees that client's capabilities, protocol version and name); its answer is the client's answer.
A request before it is answered as a legacy server answers it (`server/discover`: method not found), so a
client of both eras, which asks that first, opens with `initialize` (the CLI's `tools`, `call` and `ping`
do). From then on the client has a multiplexer of its own (ids, progress tokens, cancellation, requests
from the server, `max_concurrency`), with one peer. The process ends when its client leaves: stdin closed,
then SIGTERM to its group and tree after the grace, SIGKILL after `stop_timeout`, all without blocking
the shim's loop. A process that exits while its client is connected answers that client's requests in
flight with `connection_lost` and closes that client's connection; no other client is touched.

The shim's own run (the probe the start waits for) stays as it is in shared mode: it is what readiness,
the pings and the restart policy watch, and no client is served by it. Resource samples cover every
process the shim has (the probe's tree and each client's), summed.
"""

from __future__ import annotations

import selectors
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import field

from mcpctl import protocol
from mcpctl.clock import SYSTEM_CLOCK
from mcpctl.constants import SHARE_PER_CLIENT, STDIN_CLOSE_GRACE
from mcpctl.contract import Spec
from mcpctl.errors import ErrorType, Failure, classify_exit
from mcpctl.hints import Any, Protocol
from mcpctl.lean import Record, dataclass
from mcpctl.shim import gate
from mcpctl.shim.log import log
from mcpctl.shim.mux import LAST_WORDS_TIMEOUT, Client, Message, Multiplexer, Peer
from mcpctl.shim.run import Ready, ServerRun

Reaped = Callable[[], Iterable[tuple[int, int]]]


class Host(Protocol):
    """What `install` needs of the shim (`loop.Shim` is one)."""

    reaped: Reaped

    @property
    def spec(self) -> Spec: ...
    @property
    def instance_id(self) -> str: ...
    @property
    def selector(self) -> selectors.BaseSelector: ...
    @property
    def session(self) -> Any: ...  # shim.session.Session: its mux is replaced

    def redact(self, text: str) -> str: ...


def install(shim: Host, log_path: str, note: Callable[..., None]) -> None:
    """In per-client mode, make the shim's session serve each client from a process of its own; `note`
    writes the record (the number of client processes, as `per_client`)."""
    if shim.spec.share != SHARE_PER_CLIENT:
        return
    fleet = PerClient(shim, log_path, note, shim.reaped)
    shim.session.mux = fleet
    shim.reaped = fleet.sift  # the loop reaps every child: a client process's status is handed to its run


@dataclass
class Ending(Record):
    """A client process being stopped, one step per turn of the loop (never a blocking wait)."""

    run: ServerRun
    deadline: float
    why: str  # why it is stopped: what its exit is logged with
    signalled: bool = False  # SIGTERM sent (after the grace for stdin)
    tree: list[Any] = field(default_factory=list)

    def advance(self, now: float, stop_timeout: float) -> bool:
        """One step; True once nothing of it is left."""
        from mcpctl import process

        gone = self.run.exit_code is not None
        if not self.signalled and (gone or now >= self.deadline):
            self.tree = self.run.tree()
            self._signal(signal.SIGTERM)
            self.signalled, self.deadline = True, now + stop_timeout
            return False
        if not self.signalled:
            return False
        if gone and not process.wait_gone(self.tree, 0.0):
            return True
        if now < self.deadline:
            return False
        self._signal(signal.SIGKILL)
        return True

    def _signal(self, sig: int) -> None:
        from mcpctl import process

        if self.run.pid is not None:
            process.signal_group(self.run.pid, sig)
            process.signal_group(self.run.pid, signal.SIGCONT)
        process.signal_all(self.tree, sig)


@dataclass
class Tenant(Record):
    """One client and its own server process."""

    mux: Multiplexer
    peer: Peer
    run: ServerRun | None = None
    init_id: Any = None  # the id of the client's initialize, answered with its process's handshake
    serving: bool = False
    seen: Callable[[Message], None] = gate.ignore


class PerClient(Multiplexer):
    """The session's multiplexer in per-client mode: the probe's session stays here, with no client on it,
    and each client is dispatched to its own Tenant."""

    def __init__(self, shim: Host, log_path: str, note: Callable[..., None], reaped: Reaped) -> None:
        old = shim.session.mux
        super().__init__(old.name, old.wait_limit, old.clock)
        self.shim, self.log_path, self.note, self.reap_all = shim, log_path, note, reaped
        self.tenants: dict[int, Tenant] = {}
        self.endings: list[Ending] = []
        self.counted = -1  # so the first turn writes the count, whatever an earlier shim left

    # -- clients ---------------------------------------------------------------------------------

    def add(self, conn: Client) -> Peer:
        mux = Multiplexer(self.name, self.wait_limit, self.clock)
        peer = mux.add(conn)
        self.tenants[conn.number] = Tenant(mux, peer)
        self.peers[conn.number] = peer  # so the session finds the client; nothing here is sent to it
        return peer

    def from_client(self, peer: Peer, message: Message) -> None:
        tenant = self.tenants.get(peer.number)
        if tenant is None:
            return
        if tenant.run is not None or "id" not in message or not isinstance(message.get("method"), str):
            tenant.mux.from_client(peer, message)
        elif message["method"] == "initialize":
            self._spawn(tenant, message)
        else:
            peer.conn.send(_before_initialize(self.name, message))

    def hangup(self, conn: Client) -> None:
        tenant = self.tenants.get(conn.number)
        if tenant is None:
            return
        tenant.mux.hangup(conn)
        if conn.closed:
            self._release(conn.number, "its client disconnected")

    # -- the probe (the shim's own run): no client is on its session ---------------------------

    def from_upstream(self, message: Message) -> bool:
        if "method" not in message:
            return False  # the answer to the shim's ping
        if "id" in message:
            self._upstream(protocol.result_response(message["id"], {}) if message["method"] == "ping"
                           else protocol.method_not_found(message["id"], str(message["method"])))  # fmt: skip
        return True

    def detach(self, failure: Failure) -> None:
        self.send_upstream = None  # the probe is gone; every client's process runs on

    # -- the loop's turn -------------------------------------------------------------------------

    def expire(self, now: float | None = None, failure: Failure | None = None) -> None:
        for number, tenant in list(self.tenants.items()):
            tenant.mux.expire(now, failure)
            self._check(number, tenant)
        self.endings = [e for e in self.endings if not self._advanced(e)]
        self._count()

    def next_deadline(self) -> float:
        starting = [t.run.next_wakeup() for t in self.tenants.values() if t.run is not None and not t.serving]
        muxes = [t.mux.next_deadline() for t in self.tenants.values()]
        endings = [e.deadline for e in self.endings]
        # An ending process is looked at often: its exit is seen by the reaper, not by a deadline.
        soon = [time.monotonic() + 0.05] if self.endings else []
        return min([*starting, *muxes, *endings, *soon], default=float("inf"))

    def take_counts(self) -> tuple[int, int]:
        counts = [tenant.mux.take_counts() for tenant in self.tenants.values()]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    def sift(self) -> Iterator[tuple[int, int]]:
        """Reap: a client process's status goes to its run; the rest to the shim."""
        runs = {t.run.pid: t.run for t in self.tenants.values() if t.run is not None}
        stopped = {e.run.pid: e for e in self.endings}
        for pid, status in self.reap_all():
            ending = stopped.get(pid)
            run = ending.run if ending is not None else runs.get(pid)
            if run is None or run.exit_code is not None:
                yield pid, status
                continue
            run.exited(status)  # a serving client's exit is logged by `_check`, a starting one's by `_refuse`
            if ending is not None:  # its client is gone: it ended because it was asked to
                code = classify_exit(run.exit_code or 0)
                log(f"client {run.tenant}: its server process {pid} ended ({code}): {ending.why}")

    def close(self, failure: Failure) -> None:
        """The shim ends: every client's process is stopped (together, politely), every client let go."""
        conns = [tenant.peer.conn for tenant in self.tenants.values()]
        for number in list(self.tenants):
            self._release(number, "the shim is stopping", failure)
        for conn in conns:
            conn.flush_blocking(LAST_WORDS_TIMEOUT)
            conn.close()
        deadline = time.monotonic() + STDIN_CLOSE_GRACE + self.shim.spec.stop_timeout + 2.0
        while self.endings and time.monotonic() < deadline:
            for _ in self.sift():
                pass
            self.endings = [e for e in self.endings if not self._advanced(e)]
            time.sleep(0.02)
        self._count()

    # -- one client's process ----------------------------------------------------------------------

    def _spawn(self, tenant: Tenant, message: Message) -> None:
        shim, number = self.shim, tenant.peer.number
        run = ServerRun(shim.spec, shim.instance_id, shim.selector, shim.redact, self.log_path, SYSTEM_CLOCK)
        run.tenant, run.hello = str(number), {**message, "id": protocol.INIT_ID}
        tenant.run, tenant.init_id = run, message["id"]
        params = message.get("params")
        capabilities = params.get("capabilities") if isinstance(params, dict) else None
        tenant.peer.capabilities = capabilities if isinstance(capabilities, dict) else {}
        failure = run.spawn()
        log(f"client {number}: its own server process, pid {run.pid}")
        if failure is not None:
            self._refuse(number, tenant, failure)
        self._count()

    def _check(self, number: int, tenant: Tenant) -> None:
        run = tenant.run
        if run is None:
            return
        if not tenant.serving:
            if run.exit_code is not None:
                run.drain()
            verdict = run.judge()
            if isinstance(verdict, Ready):
                self._serve(tenant, run, verdict)
            elif verdict is not None:
                self._refuse(number, tenant, verdict)
            return
        if run.exit_code is not None:
            run.drain()
            detail = f"its own server process exited ({classify_exit(run.exit_code)})"
        elif (lost := run.lost()) is not None:
            detail = lost.message  # it closed its stdout: the session is over as if it had exited
        else:
            return
        log(f"client {number}: {detail}")
        self._release(number, detail, Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=detail))

    def _serve(self, tenant: Tenant, run: ServerRun, ready: Ready) -> None:
        tenant.serving = True
        send, tenant.seen = gate.gated(run.send, self.shim.spec.max_concurrency, lambda _id: 0)
        tenant.peer.conn.send(protocol.result_response(tenant.init_id, ready.result))

        def from_server(message: Message) -> None:
            tenant.seen(message)
            tenant.mux.from_upstream(message)

        run.on_message = from_server
        tenant.mux.attach(send, ready.result)

    def _refuse(self, number: int, tenant: Tenant, failure: Failure) -> None:
        """Its process never became ready: the client's initialize is answered with why."""
        failure = Failure(failure.type, self.shim.redact(failure.message), failure.hint)
        log(f"client {number}: its server process did not become ready: {failure.message}")
        tenant.peer.conn.send(protocol.failure_response(tenant.init_id, failure))
        self._release(number, failure.message, failure)

    def _release(self, number: int, why: str, failure: Failure | None = None) -> None:
        """The client and its process part: its requests are answered, its process ended, its connection
        closed once what is queued for it is written."""
        tenant = self.tenants.pop(number, None)
        self.peers.pop(number, None)
        if tenant is None:
            return
        tenant.mux.detach(failure or Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=why))
        tenant.mux.expire(float("inf"), failure)
        tenant.peer.conn.finish()
        if tenant.run is not None:
            self._end(tenant.run, why)

    def _end(self, run: ServerRun, why: str) -> None:
        if run.exit_code is None and run.pid is not None:
            log(f"client {run.tenant}: stopping its server process {run.pid}: {why}")
        run.on_message = None
        run.close_stdin()  # how a stdio server is asked to exit
        grace = min(STDIN_CLOSE_GRACE, self.shim.spec.stop_timeout)
        self.endings.append(Ending(run, time.monotonic() + grace, why))

    def _advanced(self, ending: Ending) -> bool:
        done = ending.advance(time.monotonic(), self.shim.spec.stop_timeout)
        if done:
            ending.run.drain()
            ending.run.close()
        return done

    def _count(self) -> None:
        running = sum(1 for t in self.tenants.values() if t.run is not None)
        if running != self.counted:
            self.counted = running
            self.note(per_client=running)


def _before_initialize(name: str, message: Message) -> Message:
    """The answer to a request that comes before the client's `initialize`, when it has no process yet: as
    a legacy server answers it. So a client of both eras that asks `server/discover` first (`tools`, `call`
    and `ping` do) hears "method not found" and opens with `initialize`, which spawns its process."""
    request_id, method = message["id"], message["method"]
    if method == "ping":
        return protocol.result_response(request_id, {})
    if method == "server/discover":
        return protocol.method_not_found(request_id, method)
    detail = f"{name} gives each client a server process of its own, spawned on its initialize: send initialize first"
    return protocol.error_response(request_id, protocol.INVALID_REQUEST, detail)
