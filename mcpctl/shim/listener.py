"""The shim's unix socket: accepting clients, and each client's JSON-RPC connection."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mcpctl import protocol
from mcpctl.constants import DEFAULT_MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from mcpctl.contract import LEND
from mcpctl.hints import Any, Protocol
from mcpctl.shim.channels import READ_CHUNK, LineReader, Outbox, Oversize
from mcpctl.shim.log import log

# How many connections one turn of the shim's loop accepts, and how long it stops accepting when the
# process (or the system) is out of file descriptors.
ACCEPTS_PER_TURN = 64
ACCEPT_PAUSE = 0.5


# Room for the two descriptors a `connect` lends (more are closed by the kernel).
_LENT_ROOM = socket.CMSG_SPACE(2 * 4)
# Lent descriptors arrive close-on-exec, as every one Python opens itself (the servers this shim spawns
# get none of its descriptors anyway: subprocess closes them).
_LENT_FLAGS = getattr(socket, "MSG_CMSG_CLOEXEC", 0)

# on_lend(connection, message, fds): True when the client's stdio was taken (the connection lives on as that).
OnLend = Callable[["Connection", dict[str, Any], list[int]], bool]


class Connection:
    """One client of the shim's socket: newline-delimited JSON-RPC in, buffered JSON-RPC out."""

    def __init__(
        self,
        sock: socket.socket,
        number: int,
        selector: selectors.BaseSelector,
        on_message: Callable[[Connection, dict[str, Any]], None],
        on_hangup: Callable[[Connection], None],
        limit: int = MAX_MESSAGE_BYTES,
        on_lend: OnLend | None = None,
        server: str = "mcpctl",
    ) -> None:
        """`limit`: the longest message (line) taken from this client; a longer one is answered an error.
        `on_lend`: how a first message `mcpctl/lend` (with the client's stdio) is taken. `server`: whose
        session this is (its name is in the errors the client is sent)."""
        self.on_lend = on_lend  # until the first message is read
        self.server = server
        self.sock = sock
        self.number = number
        self.selector = selector
        self.on_message = on_message
        self.on_hangup = on_hangup
        self.reader = LineReader(sock.fileno(), limit)
        self.events = selectors.EVENT_READ
        self.closed = False
        self.close_when_flushed = False
        self.outbox = Outbox(sock.fileno(), selector, self._want_write, self._broken, limit)
        selector.register(sock, self.events, self._ready)

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.put(protocol.encode(message))
        self._maybe_close()

    def finish(self) -> None:
        """Close once everything queued for this client is written."""
        self.close_when_flushed = True
        self._maybe_close()

    def read_now(self) -> None:
        """Take what the client sent with its connect at once, rather than on the loop's next turn."""
        if not self.closed:
            self._read()

    def _ready(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.outbox.flush()
            self._maybe_close()
        if mask & selectors.EVENT_READ and not self.closed:
            self._read()

    def _read(self) -> None:
        fds: list[int] = []
        lines = self.reader.read() if self.on_lend is None else self._first(fds)
        for _, message in messages(self, lines):
            on_lend, self.on_lend = self.on_lend, None
            if on_lend is not None and message.get("method") == LEND and on_lend(self, message, fds):
                return  # this connection goes on as the client's stdio, its socket as the tether
            self.on_message(self, message)
        for fd in fds:  # lent to no purpose: not asked for, or refused (then they were closed)
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.closed:  # an answer could not be written (the client is gone), or it was dropped
            return
        if self.reader.closed and _peer_gone(self.sock):
            self.close()  # a disconnect: what it has in flight is cancelled, nothing more is sent to it
        elif self.reader.closed:  # a half-close (shutdown of its writing end): it still gets its answers
            self._interest(self.events & ~selectors.EVENT_READ)
            self.on_hangup(self)

    def _first(self, fds: list[int]) -> list[bytes | Oversize]:
        """Until the first message is read: what the socket has, and the descriptors sent with it."""
        try:
            data, extra, _, _ = self.sock.recvmsg(READ_CHUNK, _LENT_ROOM, _LENT_FLAGS)
        except BlockingIOError:
            return []
        except OSError:
            data, extra = b"", []
        for level, kind, payload in extra:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(payload) - len(payload) % 4
                fds += memoryview(payload)[:usable].cast("i").tolist()
        return self.reader.take(data)  # a lend comes whole in one read: its descriptors go with its first byte

    def retire(self) -> None:
        """Hand the socket on, open and no longer watched. What was queued for the client is dropped:
        sent before a lend, it was for a client that has not even initialized."""
        self.outbox.stop()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.events, self.closed = 0, True

    def _want_write(self, want: bool) -> None:
        events = self.events | selectors.EVENT_WRITE if want else self.events & ~selectors.EVENT_WRITE
        self._interest(events)

    def _interest(self, events: int) -> None:
        if self.closed or events == self.events:
            return
        if self.events:
            self.selector.unregister(self.sock)
        self.events = events
        if events:
            self.selector.register(self.sock, events, self._ready)

    def _maybe_close(self) -> None:
        if self.close_when_flushed and not self.outbox.data:
            self.close()

    def _broken(self) -> None:
        """Its socket could not be written, or it left more than max_message_bytes unread: let it go."""
        overrun(self.number, self.outbox)
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.events:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.sock)
        self.events = 0
        with contextlib.suppress(OSError):
            self.sock.close()
        self.on_hangup(self)

    def flush_blocking(self, timeout: float) -> None:
        """Last words before the shim exits: write what is queued, waiting at most `timeout`."""
        if self.closed or not self.outbox.data:
            return
        with contextlib.suppress(OSError):
            self.sock.settimeout(timeout)
            self.sock.sendall(bytes(self.outbox.data))
        self.outbox.data.clear()


class Reading(Protocol):
    """A client connection's reading side (a Connection, a lent stdio)."""

    number: int
    server: str
    closed: bool
    reader: LineReader

    def send(self, message: dict[str, Any]) -> None: ...


def messages(conn: Reading, lines: list[bytes | Oversize]) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Each line of `lines` that is a JSON-RPC message, with it, while `conn` is open; a line that is not
    one is answered with an error, one past the limit too (never parsed: under its id when known)."""
    for line in lines:
        if conn.closed:
            return
        if isinstance(line, Oversize):
            request_id, is_request = protocol.sender_of(line.head, line.tail)
            size, limit = line.size, conn.reader.limit
            log(f"client {conn.number} sent a message of {size} bytes (id {request_id!r}), past the limit of {limit}")
            conn.send(protocol.too_large(request_id if is_request else None, size, limit, conn.server))
            continue
        try:
            message = protocol.decode(line)
        except protocol.ProtocolError as exc:
            conn.send(protocol.error_response(None, protocol.PARSE_ERROR, str(exc)))
            continue
        yield line, message


def overrun(number: int, outbox: Outbox) -> None:
    """Log why a client is let go when it stopped reading (a write error is its leaving: not logged)."""
    if outbox.overrun:
        log(f"client {number} left more than {outbox.limit} bytes unread (max_message_bytes): disconnected")


def refuse(sock: socket.socket, message: dict[str, Any]) -> None:
    """Say one line to a client that is not taken, and close it (a short line fits any socket buffer)."""
    with contextlib.suppress(OSError):
        sock.send(protocol.encode(message))
    sock.close()


def _peer_gone(sock: socket.socket) -> bool:
    """Whether the other end closed entirely (the kernel reports a hangup), not just its writing half."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    return any(events & (select.POLLHUP | select.POLLERR) for _, events in poller.poll(0))


class SocketServer:
    """The shim's unix socket (0600): accepts clients and hands each one to `on_connection`."""

    def __init__(
        self, path: Path, selector: selectors.BaseSelector, on_connection: Callable[[socket.socket], None]
    ) -> None:
        self.path = path
        self.selector = selector
        self.on_connection = on_connection
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # we hold the instance lock, so any socket here is a stale one
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old)
        self.sock.listen(128)
        self.sock.setblocking(False)
        self.paused_until = 0.0  # monotonic: while out of file descriptors, when to try accepting again
        self.log_again = 0.0  # monotonic: when a shortage of file descriptors is worth a log line again
        selector.register(self.sock, selectors.EVENT_READ, self._accept)

    def _accept(self, _mask: int) -> None:
        for _ in range(ACCEPTS_PER_TURN):  # a crowd at the door waits its turn like everyone else
            try:
                conn, _ = self.sock.accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause(exc)
                return
            conn.setblocking(False)
            self.on_connection(conn)

    def _pause(self, exc: OSError) -> None:
        """Out of file descriptors: the waiting connection stays readable, so stop watching the socket for
        a while rather than spin on it; the loop's `resume` looks again."""
        now = time.monotonic()
        if now >= self.log_again:  # not once per attempt: at most once a minute
            log(f"cannot accept clients on {self.path.name}: {exc.strerror}; pausing {ACCEPT_PAUSE}s at a time")
            self.log_again = now + 60.0
        self.paused_until = now + ACCEPT_PAUSE
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)

    def resume(self) -> None:
        """Watch the socket again once a pause is over (called every turn of the shim's loop)."""
        if self.paused_until and time.monotonic() >= self.paused_until:
            self.paused_until = 0.0
            self.selector.register(self.sock, selectors.EVENT_READ, self._accept)

    def close(self) -> None:
        self.paused_until = 0.0
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# File descriptors kept free for what must always work: the control socket (`status`, `stop`), the
# server's pipes after a restart, the log. Clients of the MCP socket are refused before they use them.
FD_RESERVE = 32


def open_files_limit() -> int:
    """This process's limit of open files (the soft one, which `ulimit -n` sets)."""
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def descriptors_left() -> int:
    """How many more files this process may open (Linux: counted in /proc; elsewhere: a large number)."""
    import resource

    soft = open_files_limit()
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError:
        return 1 << 30
    return (1 << 30) if soft == resource.RLIM_INFINITY else soft - used
