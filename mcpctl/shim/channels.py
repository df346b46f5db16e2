"""Non-blocking byte channels of the shim: a line reader, and an outbox that never blocks its writer.

Both take an fd the shim owns (made non-blocking), or one it was lent (`lent=True`: a client's stdin or
stdout, handed over by `mcpctl connect`). The flags of a lent fd belong to whoever shares it (the
client, a shell), so they are left alone, and each read or write is made non-blocking by itself
(RWF_NOWAIT, Linux 5.8+; `nowait_works` says whether the kernel honours it for an fd).
"""

from __future__ import annotations

import os
import selectors
from collections.abc import Callable

from mcpctl import protocol
from mcpctl.lean import Record, dataclass

# How much one read() takes from one fd in one turn of the selector loop, and in how big pieces.
READ_BUDGET = 4 * 1024 * 1024
READ_CHUNK = 1024 * 1024
# How much of each end of an oversized line is kept, to find its id.
KEEP_ENDS = 1024
# How much one read of a lent fd takes (into a buffer kept for it).
LENT_CHUNK = 64 * 1024


def nowait_works(read_fd: int, write_fd: int) -> bool:
    """Whether reads of `read_fd` and writes to `write_fd` can each be made non-blocking (RWF_NOWAIT)."""
    flag = getattr(os, "RWF_NOWAIT", None)
    if flag is None:
        return False
    try:
        os.preadv(read_fd, [bytearray(0)], -1, flag)
        os.pwritev(write_fd, [b""], -1, flag)
    except OSError:
        return False
    return True


def _read_nowait(fd: int, into: bytearray, size: int) -> bytes:
    """What a lent fd has now, at most `size` bytes read into `into` (BlockingIOError when it has nothing)."""
    with memoryview(into)[:size] as room:
        return bytes(room[: os.preadv(fd, [room], -1, os.RWF_NOWAIT)])


@dataclass(frozen=True)
class Oversize(Record):
    """A line longer than the reader's limit, discarded as it arrived: its size and its two ends."""

    size: int  # bytes seen before the newline (or EOF)
    head: bytes  # its first KEEP_ENDS bytes, where a JSON-RPC message's id usually is
    tail: bytes  # its last KEEP_ENDS bytes, where some serializers put the id instead


class LineReader:
    """Splits what a non-blocking fd sends into lines, in linear time: newlines are searched for only in
    bytes just read. One read() takes at most `budget` bytes, so one fast peer cannot starve the
    selector loop; what is left stays in the kernel and makes the fd readable again next turn. A line
    past `limit` is discarded as it arrives (memory stays bounded) and handed back as an Oversize."""

    def __init__(self, fd: int, limit: int = protocol.MAX_LINE, budget: int = READ_BUDGET, lent: bool = False) -> None:
        self.fd = fd
        self.limit = limit
        self.budget = budget
        self.buffer = bytearray()  # the unfinished line
        self.skipping: Oversize | None = None  # the line being discarded, if one is
        self.closed = False
        self.scratch = bytearray(LENT_CHUNK) if lent else None
        if not lent:
            os.set_blocking(fd, False)

    def read(self) -> list[bytes | Oversize]:
        lines: list[bytes | Oversize] = []
        taken = 0
        while taken < self.budget and not self.closed:
            size = min(READ_CHUNK if self.scratch is None else LENT_CHUNK, self.budget - taken)
            chunk = self._chunk(size)
            if chunk is None:
                break
            taken += len(chunk)
            self._split(chunk, lines)
            if 0 < len(chunk) < size and not self.buffer and self.skipping is None:
                break  # all lines whole and the fd empty just now: the selector says when it has more
        if self.closed:
            self._end_line(lines)
        return _whole(lines)

    def take(self, chunk: bytes) -> list[bytes | Oversize]:
        """The lines of `chunk`, read from the fd by the caller (b"": its end), as `read` gives them."""
        lines: list[bytes | Oversize] = []
        self.closed = not chunk
        self._split(chunk, lines)
        if self.closed:
            self._end_line(lines)
        return _whole(lines)

    def _chunk(self, size: int) -> bytes | None:
        """Up to `size` bytes; None when the fd has nothing now; b"" (and closed) at EOF or on error."""
        try:
            chunk = os.read(self.fd, size) if self.scratch is None else _read_nowait(self.fd, self.scratch, size)
        except BlockingIOError:
            return None
        except OSError:
            chunk = b""
        self.closed = not chunk
        return chunk

    def _split(self, chunk: bytes, lines: list[bytes | Oversize]) -> None:
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            self._add(chunk[start:newline])
            self._end_line(lines)
            start = newline + 1
        self._add(chunk[start:])

    def _add(self, piece: bytes) -> None:
        if self.skipping is None and len(self.buffer) + len(piece) > self.limit:
            head = bytes(self.buffer[:KEEP_ENDS]) + piece[: max(0, KEEP_ENDS - len(self.buffer))]
            self.skipping = Oversize(len(self.buffer), head, bytes(self.buffer[-KEEP_ENDS:]))
            self.buffer = bytearray()  # a fresh one: clear() would keep the big allocation
        if self.skipping is not None:
            self.skipping = _skipped(self.skipping, piece)
        else:
            self.buffer += piece

    def _end_line(self, lines: list[bytes | Oversize]) -> None:
        if self.skipping is not None:
            lines.append(self.skipping)
            self.skipping = None
        elif self.buffer:
            lines.append(bytes(self.buffer))
            self.buffer = bytearray()


def _whole(lines: list[bytes | Oversize]) -> list[bytes | Oversize]:
    return [line for line in lines if isinstance(line, Oversize) or (line and not line.isspace())]


def _skipped(line: Oversize, piece: bytes) -> Oversize:
    tail = (line.tail + piece)[-KEEP_ENDS:] if len(piece) < KEEP_ENDS else piece[-KEEP_ENDS:]
    return Oversize(line.size + len(piece), line.head, tail)


class Outbox:
    """Bytes waiting for a non-blocking fd. Never blocks: what the fd cannot take now is kept, and
    written when the selector says the fd is writable. `limit` is the peer's max_message_bytes: a message
    is queued whole whenever what waits before it is at most that much, so any message up to the limit
    reaches a peer that reads, however big, and a peer is given up on (`on_error`) only once it has more
    than a limit's worth unread when the next message comes. What one peer holds stays under twice the
    limit (the backlog and one message)."""

    def __init__(
        self,
        fd: int,
        selector: selectors.BaseSelector,
        want_write: Callable[[bool], None],
        on_error: Callable[[], None],
        limit: int,
        lent: bool = False,
    ) -> None:
        self.fd = fd
        self.lent = lent
        self.selector = selector
        self.want_write = want_write
        self.on_error = on_error
        self.limit = limit
        self.data = bytearray()
        self.failed = False
        self.overrun = False  # why it failed: the peer stopped reading (else the fd broke)
        self.mid_line = False  # the fd was left inside a line: the last byte written was not a newline
        self.taken = self.written = 0  # bytes put so far, and how many of them the fd took
        self.writing = False  # registered with the selector for writability
        if not lent:
            os.set_blocking(fd, False)

    def put(self, data: bytes) -> None:
        if self.failed:
            return
        if len(self.data) > self.limit:
            self.overrun = True
            self._fail()
            return
        self.taken += len(data)
        if not self.data:
            written = self._write(data)
            if written is None:
                self._fail()
                return
            data = data[written:]
        if not data:
            return
        self.data += data
        self._interest(True)

    def flush(self) -> None:
        """The fd is writable: write what it takes."""
        if self.data and not self.failed:
            with memoryview(self.data) as view:  # no copy of what is queued, however much it is
                written = self._write(view)
            if written is None:
                self._fail()
            else:
                del self.data[:written]  # cheap: a bytearray drops its front without moving the rest
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

    def _write(self, data: bytes | memoryview) -> int | None:
        """How much the fd took now; None when it is broken."""
        try:
            written = os.write(self.fd, data) if not self.lent else os.pwritev(self.fd, [data], -1, os.RWF_NOWAIT)
        except BlockingIOError:
            return 0
        except OSError:
            return None
        if written:
            self.written += written
            self.mid_line = data[written - 1] != 0x0A
        return written

    def _fail(self) -> None:
        self.failed = True
        self.stop()
        self.on_error()
