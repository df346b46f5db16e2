"""Non-blocking byte channels of the shim: a line reader, and an outbox that never blocks its writer."""

from __future__ import annotations

import os
import selectors
from collections.abc import Callable

from mcpctl import protocol

# A client (or a server's stdin) that falls this far behind is given up on, not waited for.
OUTBOX_LIMIT = 64 * 1024 * 1024


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
