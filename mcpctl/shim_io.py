"""The shim's plumbing: its log lines, a non-blocking line reader, the control socket, the subreaper."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpctl import protocol
from mcpctl.logfile import MARK, LogWriter, stamp

# A client (or a server's stdin) that falls this far behind is given up on, not waited for.
OUTBOX_LIMIT = 64 * 1024 * 1024

_log: LogWriter | None = None  # the server's log, once the shim knows its rotation settings


def use_log(writer: LogWriter) -> None:
    global _log  # noqa: PLW0603 - one log per shim process
    _log = writer


def retune_log(max_bytes: int, backups: int) -> None:
    if _log is not None:
        _log.max_bytes, _log.backups = max_bytes, backups


def log(message: str) -> None:
    """One line of the shim's own in the server's log (the shim's stderr is that log file)."""
    log_lines([message], ours=True)


def log_lines(lines: list[str], ours: bool = False) -> None:
    if _log is not None:
        _log.write(lines, ours)
        return
    prefix = f"{stamp()} {MARK} " if ours else f"{stamp()} "
    with contextlib.suppress(OSError):
        os.write(2, "".join(prefix + line + "\n" for line in lines).encode("utf-8", "replace"))


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def become_subreaper() -> bool:
    """On Linux, adopt orphaned descendants (they are re-parented to us, and we reap them)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_child_subreaper = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


class LineReader:
    """Reads whatever a non-blocking fd has and hands back complete lines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False
        os.set_blocking(fd, False)

    def read(self) -> list[bytes]:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        if len(self.buffer) > protocol.MAX_LINE or (self.closed and self.buffer):
            lines.append(self.buffer)
            self.buffer = b""
        return [line for line in lines if line.strip()]


class Outbox:
    """Bytes waiting for a non-blocking fd. Never blocks: what the fd cannot take now is kept, and
    written when the selector says the fd is writable. Past `limit` bytes the peer is given up on."""

    def __init__(
        self,
        fd: int,
        selector: selectors.BaseSelector,
        want_write: Callable[[bool], None],
        on_error: Callable[[], None],
        limit: int = OUTBOX_LIMIT,
    ) -> None:
        self.fd = fd
        self.selector = selector
        self.want_write = want_write
        self.on_error = on_error
        self.limit = limit
        self.data = bytearray()
        self.failed = False
        self.writing = False  # registered with the selector for writability
        os.set_blocking(fd, False)

    def put(self, data: bytes) -> None:
        if self.failed:
            return
        if not self.data:
            data = data[self._write(data) :]
        if not data or self.failed:
            return
        self.data += data
        self._interest(True)
        if len(self.data) > self.limit:
            self._fail()

    def flush(self) -> None:
        """The fd is writable: write what it takes."""
        if self.data and not self.failed:
            del self.data[: self._write(bytes(self.data))]
        if not self.data:
            self._interest(False)

    def stop(self) -> None:
        """Forget what is queued and stop watching the fd (before it is closed)."""
        self.data.clear()
        self._interest(False)

    def _interest(self, want: bool) -> None:
        if want != self.writing:
            self.writing = want
            self.want_write(want)

    def _write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except OSError:
            self._fail()
            return 0

    def _fail(self) -> None:
        self.failed = True
        self.stop()
        self.on_error()


class Connection:
    """One client of the shim's socket: newline-delimited JSON-RPC in, buffered JSON-RPC out."""

    def __init__(
        self,
        sock: socket.socket,
        number: int,
        selector: selectors.BaseSelector,
        on_message: Callable[[Connection, dict[str, Any]], None],
        on_hangup: Callable[[Connection], None],
    ) -> None:
        self.sock = sock
        self.number = number
        self.selector = selector
        self.on_message = on_message
        self.on_hangup = on_hangup
        self.reader = LineReader(sock.fileno())
        self.events = selectors.EVENT_READ
        self.closed = False
        self.close_when_flushed = False
        self.outbox = Outbox(sock.fileno(), selector, self._want_write, self.close)
        selector.register(sock, self.events, self._ready)

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.put(protocol.encode(message))
        self._maybe_close()

    def finish(self) -> None:
        """Close once everything queued for this client is written."""
        self.close_when_flushed = True
        self._maybe_close()

    def _ready(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.outbox.flush()
            self._maybe_close()
        if mask & selectors.EVENT_READ and not self.closed:
            self._read()

    def _read(self) -> None:
        for line in self.reader.read():
            try:
                message = protocol.decode(line)
            except protocol.ProtocolError as exc:
                self.send(protocol.error_response(None, protocol.PARSE_ERROR, str(exc)))
                continue
            self.on_message(self, message)
            if self.closed:
                return
        if self.reader.closed:
            self._interest(self.events & ~selectors.EVENT_READ)
            self.on_hangup(self)

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
        selector.register(self.sock, selectors.EVENT_READ, self._accept)

    def _accept(self, _mask: int) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setblocking(False)
            self.on_connection(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
