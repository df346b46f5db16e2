"""A client's stdio, lent by `mcpctl connect`: the shim reads the client's stdin and writes its stdout
itself, so a message makes one hop through mcpctl instead of two.

`connect` sends its stdin and stdout (SCM_RIGHTS) with its first message on the shim's socket,
`mcpctl/lend`. They are taken when they are pipes or sockets that can be read and written without
touching their flags (which the client and its shell share): the answer, on the socket, says so. From
then on the client's messages come from its stdin and go to its stdout, served like any other client's.
The socket stays open as the tether: when `connect` goes (killed with its client), the client is let go;
when the shim lets go, `connect` carries the session over to the next shim with what the journal told
it. The journal is what the shim writes on the tether, a record a line, which `connect` reads only now
and then and when the tether ends:

    i<line>   the client's initialize        n   it sent notifications/initialized
    +<id>     a request taken (id as JSON)   -<id>  one answered (written whole to stdout)
    p<bytes>  the start of a line not read whole when the shim let go (`connect` keeps it)
    c         the shim was discarding an oversized line (`connect` drops the rest of it)
    o         the shim let go in the middle of a line to stdout (`connect` ends it before its own lines)
    e         the client left (its stdin ended): `connect` exits
    u<limit>  the client left more than <limit> bytes unread on stdout (max_message_bytes): let go for it
    q         the shim let go otherwise (stopping, or closing this client): `connect` reconnects
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import selectors
import stat
import time
from collections import deque
from collections.abc import Callable

from mcpctl import protocol
from mcpctl.hints import Any
from mcpctl.shim.channels import LineReader, Outbox, nowait_works
from mcpctl.shim.listener import Connection, messages, overrun
from mcpctl.shim.log import log

Message = dict[str, Any]
# When the shim exits: how long its last records may take to reach `connect`.
LAST_RECORDS_TIMEOUT = 1.0


def take(
    conn: Connection,
    message: Message,
    fds: list[int],
    on_message: Callable[[Any, Message], None],
    on_hangup: Callable[[Any], None],
) -> Lent | None:
    """The client's stdio, served from now on in place of `conn`; None (the descriptors closed) when they
    cannot be served so, and `conn` goes on as it was."""
    if len(fds) != 2 or not _usable(fds[0], os.O_RDONLY) or not _usable(fds[1], os.O_WRONLY):
        why = "not a pipe or socket each"
    elif not nowait_works(fds[0], fds[1]):
        why = "this kernel cannot read and write them without blocking (RWF_NOWAIT)"
    else:
        params = message.get("params")
        drain = isinstance(params, dict) and params.get("drain") is True
        answer = protocol.result_response(message.get("id"), {"lent": True})
        return Lent(conn, fds[0], fds[1], drain, answer, on_message, on_hangup)
    log(f"client {conn.number}: its stdio stays with mcpctl connect ({why})")
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()
    return None


def _usable(fd: int, mode: int) -> bool:
    try:
        kind, access = os.fstat(fd).st_mode, fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return False
    return (stat.S_ISFIFO(kind) or stat.S_ISSOCK(kind)) and access in (mode, os.O_RDWR)


def _key(request_id: object) -> bytes | None:
    """A request id as `connect` keys it: its JSON text (so 1 and "1" differ)."""
    if type(request_id) is int:
        return b"%d" % request_id
    return json.dumps(request_id).encode() if isinstance(request_id, str) else None


class Lent:
    """The client of one `connect`, served through its own stdin and stdout; the multiplexer sees a
    connection like the others (same number, same callbacks)."""

    def __init__(
        self,
        conn: Connection,
        rfd: int,
        wfd: int,
        drain: bool,
        answer: Message,
        on_message: Callable[[Any, Message], None],
        on_hangup: Callable[[Any], None],
    ) -> None:
        self.number, self.server, self.selector, self.tether = conn.number, conn.server, conn.selector, conn.sock
        self.rfd, self.wfd, self.drain = rfd, wfd, drain
        self.on_message, self.on_hangup = on_message, on_hangup
        self.closed = False
        self.close_when_flushed = False
        self.client_left = False
        self.exiting = False  # the shim is about to exit: the last records are written before close returns
        self.tether_events = selectors.EVENT_READ
        self.tethered = True
        self.unwritten: deque[tuple[int, bytes]] = deque()  # answers queued for stdout: where each ends, its id
        conn.retire()
        self.reader = LineReader(rfd, conn.reader.limit, lent=True)
        limit = conn.reader.limit
        self.outbox = Outbox(wfd, self.selector, self._want_write, self._broken, limit, lent=True)
        self.journal = Outbox(self.tether.fileno(), self.selector, self._want_journal, self._untether, limit)
        self.journal.put(protocol.encode(answer))
        self.selector.register(rfd, selectors.EVENT_READ, self._readable)
        self.selector.register(self.tether, selectors.EVENT_READ, self._on_tether)

    # -- the Client interface -------------------------------------------------------------------

    def send(self, message: Message) -> None:
        self.outbox.put(protocol.encode(message))
        if "method" not in message and (key := _key(message.get("id"))) is not None and not self.outbox.failed:
            self.unwritten.append((self.outbox.taken, key))
            self._delivered()
        self._maybe_close()

    def _delivered(self) -> None:
        """Journal the answers written whole: one still queued when the shim lets go is in flight for
        `connect`, which answers it with an error (it would wait for ever otherwise)."""
        while self.unwritten and self.unwritten[0][0] <= self.outbox.written:
            self._note(b"-" + self.unwritten.popleft()[1])

    def finish(self) -> None:
        self.close_when_flushed = True
        self._maybe_close()

    def flush_blocking(self, timeout: float) -> None:
        """Last words before the shim exits: write what is queued to stdout, waiting at most `timeout`."""
        self.exiting = True
        poller = select.poll()
        poller.register(self.wfd, select.POLLOUT)
        deadline = time.monotonic() + timeout
        while self.outbox.data and not self.outbox.failed and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                break
            self.outbox.flush()
            self._delivered()
        self.outbox.data.clear()

    def _broken(self) -> None:
        overrun(self.number, self.outbox)
        self.close()

    def close(self) -> None:
        """Let go of the client: its stdio closed here, how it went written to the journal, and the tether
        closed once `connect` has read it (it reads at most PACE seconds apart)."""
        if self.closed:
            return
        self.closed = True
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._last_records()
        self.on_hangup(self)

    # -- the client's stdin ---------------------------------------------------------------------

    def _readable(self, _mask: int) -> None:
        for line, message in messages(self, self.reader.read()):
            self._noted(line, message)
            self.on_message(self, message)
        if self.closed or not self.reader.closed:
            return
        self.client_left = True
        if not self.drain:
            self.close()  # a disconnect: what it has in flight is cancelled
            return
        with contextlib.suppress(KeyError, ValueError):  # `connect --drain`: it still gets its answers
            self.selector.unregister(self.rfd)
        self.on_hangup(self)

    def _noted(self, line: bytes, message: Message) -> None:
        method = message.get("method")
        if method == "notifications/initialized":
            self._note(b"n")
        elif method is not None and (key := _key(message.get("id"))) is not None:
            if method == "initialize":
                self._note(b"i" + line)
            self._note(b"+" + key)

    # -- the client's stdout and the tether -----------------------------------------------------

    def _want_write(self, want: bool) -> None:
        if self.closed:
            return
        if want:
            self.selector.register(self.wfd, selectors.EVENT_WRITE, self._writable)
        else:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.wfd)

    def _writable(self, _mask: int) -> None:
        self.outbox.flush()
        self._delivered()
        self._maybe_close()

    def _maybe_close(self) -> None:
        if self.close_when_flushed and not self.outbox.data:
            self.close()

    def _note(self, record: bytes) -> None:
        self.journal.put(record + b"\n")

    def _want_journal(self, want: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
        if self.tethered and events != self.tether_events:
            self.tether_events = events
            self.selector.modify(self.tether, events, self._on_tether)

    def _on_tether(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.journal.flush()
            if self.closed and not self.journal.data:
                self._untether()  # the last records are read
        if mask & selectors.EVENT_READ and self.tethered:
            try:
                data = self.tether.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # `connect` is gone, and its client with it, for all the shim can tell
                self.close()
                self._untether()

    def _last_records(self) -> None:
        """How the shim let go, at the end of the journal; the tether ends once they are written."""
        if self.outbox.mid_line:
            self._note(b"o")
        if self.outbox.overrun:  # `connect` says why, not that the shim went away
            self._note(b"u%d" % self.outbox.limit)
        if self.client_left:
            self._note(b"e")
        elif self.reader.skipping is not None:
            self._note(b"c\nq")
        else:
            self._note((b"p" + bytes(self.reader.buffer) + b"\n" if self.reader.buffer else b"") + b"q")
        if self.exiting and self.journal.data and not self.journal.failed:
            with contextlib.suppress(OSError):
                self.tether.settimeout(LAST_RECORDS_TIMEOUT)
                self.tether.sendall(bytes(self.journal.data))
            self.journal.data.clear()
        if not self.journal.data:
            self._untether()

    def _untether(self) -> None:
        if not self.tethered:
            return
        self.tethered = False
        self.journal.stop()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.tether)
        with contextlib.suppress(OSError):
            self.tether.close()
        self.close()  # when the journal failed first
