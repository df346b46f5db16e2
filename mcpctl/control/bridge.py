"""`mcpctl connect`: the client's stdio on one side, the shim's socket on the other, and a session that
outlives the shim.

When stdin and stdout are pipes or sockets they are lent to the shim, which then serves the client
through them itself, and this process only holds the tether (`tether`); when the shim lets go, the
session is carried over to the next shim and relayed from then on. Otherwise (a terminal, a file, a shim
that refuses) the bridge relays. Relaying, bytes are copied as they come (one read and one write on each
side); the bridge only looks at where each message ends and at its id (a small message is parsed, a big
one read at its ends), to know which of the client's requests are in flight. When the shim goes away
(stopped, replaced, killed) the client keeps its stdio session: the requests in flight are answered with
a retryable error, new ones wait (up to HOLD seconds), and the bridge reconnects to the next shim and
replays the client's `initialize` and `notifications/initialized`; once that shim has answered (the
answer is swallowed) what waited goes to it, and the client is told to fetch its lists again. A shim
that died is started again as on the first connect (unless --no-start); a server a person stopped is
not.

A stdio client leaves by closing our stdin (or by dying, see `pump.watch_parent`): that is a disconnect.
The bridge closes its socket, so the shim cancels what the client has in flight and frees what it
held, and exits. With `drain` (`connect --drain`, for scripts that pipe requests in) stdin's end only
half-closes the socket: the shim answers what is in flight, then closes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from mcpctl import protocol
from mcpctl.control import tether
from mcpctl.control.pump import FIRST_MESSAGE_WAIT, refuse
from mcpctl.control.scan import Scanner, Seen
from mcpctl.control.shim_client import Refused
from mcpctl.errors import ErrorType, Failure, MCPCtlError
from mcpctl.lean import Record, dataclass

CHUNK = 256 * 1024
HOLD = 5.0  # how long a request sent while no shim is reachable waits for one before it is answered
POLL = (0.05, 0.5)  # the first and the longest wait between attempts to reach a shim again
REPLAY_ID = "mcpctl-replay-"
REPLAY_WAIT = 30.0  # how long a new shim may take to answer the replayed initialize
# After stdin's end, how long the bridge lets its last write to stdout finish before it exits anyway.
EXIT_GRACE = 1.0

# Reconnect(may_start): a connected socket to the shim, or OSError / MCPCtlError (then it is tried again).
Reconnect = Callable[[bool], socket.socket]


@dataclass(frozen=True)
class Held(Record):
    """A client line that came while no shim was reachable."""

    deadline: float
    line: bytes
    key: str | None  # its id, when it is a request (answered with an error if no shim comes in time)


class Bridge:
    """One client's stdio session, across shims. `run` returns when the client leaves."""

    def __init__(self, name: str, sock: socket.socket, reconnect: Reconnect, drain: bool = False) -> None:
        self.name, self.reconnect, self.drain = name, reconnect, drain
        # The client's thread and the shim's side share what follows; a refusal waits on it for the client's
        # first request (held, or gone with the client).
        self.lock = threading.Condition()
        self.sock: socket.socket | None = sock  # None while no shim is reachable
        self.up = Scanner()  # the client's bytes
        self.inflight: set[str] = set()  # the client's requests sent to the shim and not answered
        self.held: list[Held] = []
        self.away = bytearray()  # the unfinished line that came while no shim was reachable
        self.cut = False  # the client's line in progress began on a shim now gone: the rest is dropped
        self.orphans: list[str] = []  # requests dropped so: answered with an error
        self.init: dict[str, Any] | None = None  # the client's initialize, replayed to each new shim
        self.initialized = False
        self.client_done = threading.Event()
        self.refusal: Failure | None = None  # the shim would not serve the client
        # The shim's side, touched by run's thread only.
        self.down = Scanner()
        self.replay: str | None = None  # the replayed initialize's id while its answer is awaited
        self.pending = bytearray()  # the shim's bytes held back meanwhile (to take that answer out)
        self.replays = itertools.count(1)

    def run(self) -> None:
        """Serve the client until it leaves; MCPCtlError when the shim refused it (past `max_clients`)."""
        sock = self.sock
        journal = self._lend(sock) if sock is not None and tether.lendable() else None
        if sock is not None and journal is not None:
            sock = self._carry(tether.hold(sock, journal))  # the client's thread started, if it stays
        else:
            threading.Thread(target=self._from_client, daemon=True).start()
        while sock is not None and self._pump(sock):
            if not self._lost():
                return
            sock = self._reach()

    def _lend(self, sock: socket.socket) -> tether.Journal | None:
        try:
            return tether.lend(sock, self.drain)
        except Refused as refused:  # the stdio is still ours, the client's first request unread in it
            refuse(refused.failure)
            raise MCPCtlError.from_failure(refused.failure) from None

    def _carry(self, journal: tether.Journal) -> socket.socket | None:
        """The shim let go of the lent stdio: carry the session over to the next shim, relayed from
        now on (as when the stdio could not be lent); None when the client is gone."""
        if journal.ended:
            return None
        self.init, self.initialized, self.inflight = journal.init, journal.initialized, journal.inflight
        if not self._lost(journal.open_line, tether.cut_off(self.name, journal.overrun)):
            return None
        self.up.feed(journal.partial)  # the start of a line the shim took: it goes to the next shim
        self.away, self.cut = bytearray(journal.partial), journal.cut
        threading.Thread(target=self._from_client, daemon=True).start()
        return self._reach()

    # -- the shim's side -----------------------------------------------------------------------

    def _pump(self, sock: socket.socket) -> bool:
        """Copy the shim's bytes to the client; True when the shim went away and the client stays."""
        while True:
            try:
                data = sock.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                sock.close()
                return not self.client_done.is_set()
            try:
                self._to_client(data)
            except OSError:  # the client closed its stdout: it is gone
                return False

    def _to_client(self, data: bytes) -> None:
        if self.replay is None and not self.pending:
            seen = self.down.feed(data)
            self._answered(seen)
            _write_all(1, data)
            refusal = _refusal_in(seen)
            if refusal is not None:
                self._refused(refusal)
            return
        self.pending += data
        out = bytearray()
        while self.replay is not None and (newline := self.pending.find(b"\n")) >= 0:
            line = bytes(self.pending[: newline + 1])
            del self.pending[: newline + 1]
            seen = self.down.feed(line)
            refusal = _refusal_in(seen)
            if refusal is not None and refusal.type not in _PASSING:
                # The next shim will not take this client (past its max_clients): said as at a first connect,
                # not retried for ever. Out of descriptors passes: the next try may find one.
                self.replay = None
                _write_all(1, bytes(out) + line)  # the shim's line, as a first connect passes it on
                self._refused(refusal)
            if seen and seen[0].key == self.replay and not seen[0].request:
                out += self._replayed(seen[0])  # the answer to our replay: the client had its own long ago
                continue
            self._answered(seen)
            out += line
        if self.replay is None and self.pending:
            rest = bytes(self.pending)
            self.pending.clear()
            self._answered(self.down.feed(rest))
            out += rest
        if out:
            _write_all(1, bytes(out))

    def _refused(self, failure: Failure) -> NoReturn:
        """The shim would not serve this client (past `max_clients`) and closed the connection: the
        client's requests (its first one, once it comes) are answered with why, and connect ends with it."""

        def waiting() -> list[str]:
            return [*self.inflight, *(h.key for h in self.held if h.key is not None)]

        with self.lock:
            self.sock, self.refusal = None, failure  # what the client sends from now on is held
            self.lock.wait_for(lambda: waiting() or self.client_done.is_set(), FIRST_MESSAGE_WAIT)
            keys = waiting()
        self._answer(keys, failure)
        raise MCPCtlError.from_failure(failure)

    def _answered(self, seen: list[Seen]) -> None:
        answered = [s.key for s in seen if s.key is not None and not s.request]
        if answered:
            with self.lock:
                self.inflight.difference_update(answered)

    def _replayed(self, answer: Seen) -> bytes:
        """What the client is told once the new shim took the replay: fetch the lists again."""
        self.replay = None
        result = (answer.message or {}).get("result")
        capabilities = result.get("capabilities") if isinstance(result, dict) else None
        declared = capabilities if isinstance(capabilities, dict) else {}
        kinds = ["tools", *(kind for kind in ("prompts", "resources") if kind in declared)]
        return b"".join(
            protocol.encode({"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"}) for kind in kinds
        )

    def _lost(self, open_line: bool = False, why: Failure | None = None) -> bool:
        """The shim went away (or let go of the client: `why`): answer what was in flight; False when the
        client is gone too. A line the client got the start of (relayed, or written by the shim to a lent
        stdout: `open_line`) is ended first, so that what follows (those answers, the next shim's lines) is
        a line of its own."""
        with self.lock:
            self.sock = None
            lost, self.inflight = self.inflight, set()
            self.cut = self.up.partial  # that line's beginning went to the shim now gone
        end = b"\n" if open_line or self.down.partial else b""
        self.replay, self.pending, self.down = None, bytearray(), Scanner()
        detail = "its shim went away with the request in flight; mcpctl connect is reconnecting"
        why = why or Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=detail)
        return self._answer(lost, why, end)

    def _reach(self) -> socket.socket | None:
        """Reach the next shim (starting the server once, if it died); None when the client left first."""
        delay, may_start = POLL[0], True
        detail = f"no shim answered within {HOLD:g}s; mcpctl connect is reconnecting"
        failure = Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=detail)
        while not self.client_done.is_set():
            try:
                sock = self.reconnect(may_start)
            except MCPCtlError as exc:  # not running (stopped by a person), or a start that failed
                failure, may_start = Failure(exc.type, exc.message, exc.hint), False
            except OSError:
                pass
            else:
                try:
                    if self._greeted(sock):
                        return self._resume(sock)
                except _ClientGone:
                    return None
            if not self._expire(failure):
                return None
            time.sleep(POLL[0] if self.held else delay)
            delay = min(delay * 2, POLL[1])
        return None

    def _expire(self, failure: Failure) -> bool:
        """Answer the requests that waited too long for a shim; False when the client is gone."""
        now = time.monotonic()
        with self.lock:
            expired = [h.key for h in self.held if h.deadline <= now and h.key is not None]
            self.held = [h for h in self.held if h.deadline > now]
            expired, self.orphans = [*self.orphans, *expired], []
        return self._answer(expired, failure)

    def _greeted(self, sock: socket.socket) -> bool:
        """Replay the client's handshake on a new socket and wait for the shim's answer; False (the socket
        closed) when no shim answered. A connection is no proof of a shim: a killed one's listener can
        outlive its other sockets for a moment (seen: 1 connection in 30 made right after the tether's
        end), take the connection, and drop it. What waits is sent only to a shim that answered."""
        if self.init is None:
            return True
        replay_id = f"{REPLAY_ID}{next(self.replays)}"
        self.replay = json.dumps(replay_id)
        data = protocol.encode({**self.init, "id": replay_id})
        if self.initialized:
            data += protocol.encode(protocol.initialized_notification())
        try:
            sock.settimeout(REPLAY_WAIT)
            sock.sendall(data)
            while self.replay is not None:
                chunk = sock.recv(CHUNK)
                if not chunk:
                    raise ConnectionResetError("the shim closed before it answered")
                try:
                    self._to_client(chunk)
                except OSError:  # the client closed its stdout: it is gone
                    raise _ClientGone from None
            sock.settimeout(None)
        except OSError:  # TimeoutError among them
            sock.close()
            self.replay, self.pending, self.down = None, bytearray(), Scanner()
            return False
        return True

    def _resume(self, sock: socket.socket) -> socket.socket:
        """A shim that took the handshake: send what waited, then let the client's bytes through."""
        while True:
            with self.lock:
                held, self.held = self.held, []
                self.inflight.update(h.key for h in held if h.key is not None)
                if not held:
                    with contextlib.suppress(OSError):
                        sock.sendall(bytes(self.away))
                    self.away, self.sock = bytearray(), sock
                    return sock
            with contextlib.suppress(OSError):  # a shim gone again is seen by the next read
                sock.sendall(b"".join(h.line for h in held))

    def _answer(self, keys: list[str] | set[str], failure: Failure, first: bytes = b"") -> bool:
        data = first + b"".join(protocol.encode(protocol.failure_response(json.loads(key), failure)) for key in keys)
        try:
            if data:
                _write_all(1, data)
        except OSError:
            return False
        return True

    # -- the client's side (its own thread) ----------------------------------------------------

    def _from_client(self) -> None:
        while True:
            try:
                data = os.read(0, CHUNK)
            except OSError:
                data = b""
            if not data:
                self._client_left()
                return
            with self.lock:
                seen = self.up.feed(data)
                self._remember(seen)
                sock = self.sock
                if sock is None:
                    self._hold(data, seen)
                    continue
                self.inflight.update(s.key for s in seen if s.request and s.key is not None)
            with contextlib.suppress(OSError):  # the shim is gone: the run thread answers what was in flight
                sock.sendall(data)

    def _client_left(self) -> None:
        """The end of stdin: a disconnect (the shim cancels what is in flight), or with `drain` a
        half-close (the shim answers what is in flight, then closes)."""
        self.client_done.set()
        with self.lock:
            sock = self.sock
            self.lock.notify_all()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR if self.drain else socket.SHUT_RDWR)
        if not self.drain:  # the run thread's recv returns at once; a write to a client that stopped reading may not
            time.sleep(EXIT_GRACE)
            if self.refusal is None:  # else the run thread ends connect with the shim's refusal
                os._exit(0)

    def _remember(self, seen: list[Seen]) -> None:
        for s in seen:
            if s.method == "initialize" and s.request and s.message is not None:
                self.init = s.message
            elif s.method == "notifications/initialized":
                self.initialized = True

    def _hold(self, data: bytes, seen: list[Seen]) -> None:
        """Keep the client's whole lines until a shim is reached (called with the lock held)."""
        if self.cut:
            newline = data.find(b"\n")
            if newline < 0:
                return
            self.cut, first, data, seen = False, seen[0], data[newline + 1 :], seen[1:]
            if first.request and first.key is not None:
                self.orphans.append(first.key)
        *lines, rest = bytes(self.away + data).split(b"\n")
        self.away = bytearray(rest)
        deadline = time.monotonic() + HOLD
        for line, s in zip(lines, seen, strict=True):
            self.held.append(Held(deadline, line + b"\n", s.key if s.request else None))
        self.lock.notify_all()


class _ClientGone(Exception):
    """The client closed its stdout while the bridge reached a new shim."""


# Refusals a reconnecting bridge tries past: out of descriptors (untyped, from an older shim: connection_lost).
_PASSING = frozenset({ErrorType.TOO_MANY_OPEN_FILES, ErrorType.CONNECTION_LOST})


def _refusal_in(seen: list[Seen]) -> Failure | None:
    """The shim's refusal of the connection among the messages `seen`, if it sent one."""
    for s in seen:
        refusal = protocol.refusal(s.message) if s.message is not None else None
        if refusal is not None:
            return refusal
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
