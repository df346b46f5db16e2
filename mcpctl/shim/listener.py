"""The shim's unix socket: accepting clients, and each client's JSON-RPC connection."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpctl import protocol
from mcpctl.constants import DEFAULT_MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from mcpctl.shim.channels import LineReader, Outbox, Oversize
from mcpctl.shim.log import log


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
    ) -> None:
        """`limit`: the longest message (line) taken from this client; a longer one is answered an error."""
        self.sock = sock
        self.number = number
        self.selector = selector
        self.on_message = on_message
        self.on_hangup = on_hangup
        self.reader = LineReader(sock.fileno(), limit)
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
            if isinstance(line, Oversize):
                self._too_large(line)
                continue
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

    def _too_large(self, line: Oversize) -> None:
        """A message past the limit, never parsed: an error to its sender, under its id if that is known."""
        request_id, is_request = protocol.sender_of(line.head, line.tail)
        log(f"client {self.number} sent a message of {line.size} bytes, past the limit of {self.reader.limit}")
        self.send(protocol.too_large(request_id if is_request else None, line.size, self.reader.limit))

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
