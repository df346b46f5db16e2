"""The shim's plumbing: its log lines, a non-blocking line reader, the control socket, the subreaper."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpctl import protocol

LOG_MARK = "[mcpctl]"


def log(message: str) -> None:
    """One line of the shim's own in the server's log (the shim's stderr is that log file)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with contextlib.suppress(OSError):
        os.write(2, f"{LOG_MARK} {stamp} {message}\n".encode())


def stderr_tail(log_path: Path, offset: int, lines: int) -> list[str]:
    """The server's last `lines` lines of stderr written to its log since `offset`."""
    try:
        with open(log_path, "rb") as log_file:
            size = log_file.seek(0, os.SEEK_END)
            start = max(offset, size - 64 * 1024)
            log_file.seek(start)
            data = log_file.read(size - start)
    except OSError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    return [line for line in text if not line.startswith(LOG_MARK)][-lines:]


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


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlServer:
    """The shim's unix socket (0600): newline-delimited JSON-RPC, one answer per request."""

    def __init__(self, path: Path, selector: selectors.BaseSelector, handler: Handler) -> None:
        self.path = path
        self.selector = selector
        self.handler = handler
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # we hold the instance lock, so any socket here is a stale one
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(path))
        finally:
            os.umask(old)
        self.sock.listen(16)
        self.sock.setblocking(False)
        selector.register(self.sock, selectors.EVENT_READ, self._accept)

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.setblocking(False)
        reader = LineReader(conn.fileno())
        self.selector.register(conn, selectors.EVENT_READ, lambda: self._serve(conn, reader))

    def _serve(self, conn: socket.socket, reader: LineReader) -> None:
        for line in reader.read():
            try:
                answer = self.handler(protocol.decode(line))
            except protocol.ProtocolError as exc:
                answer = protocol.error_response(None, -32700, str(exc))
            self._answer(conn, answer)
        if reader.closed:
            self.selector.unregister(conn)
            conn.close()

    def _answer(self, conn: socket.socket, answer: dict[str, Any]) -> None:
        try:
            conn.settimeout(1.0)  # answers are small; a client that will not read gets dropped
            conn.sendall(protocol.encode(answer))
            conn.setblocking(False)
        except OSError:
            pass

    def close(self) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
