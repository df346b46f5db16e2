"""`mcpctl connect` lends its stdin and stdout to the shim, then only holds the tether.

A message through a lent stdio makes one hop through mcpctl (the shim) instead of two (this process
and the shim): each hop of a Python relay costs 0.1-0.2 ms of every round trip on a 2-core machine,
and its CPU. Lent when both are pipes or sockets (a terminal or a file is relayed by the bridge), and
taken when the shim can use them without touching their flags (shim/lent.py, which also describes
the journal read here). While the shim serves the client this process sleeps: it is woken by the
journal at most 50 times a second, and by the tether's end.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import stat
import sys

from mcpctl import protocol
from mcpctl.contract import LEND
from mcpctl.control.shim_client import Refused
from mcpctl.errors import ErrorType, Failure
from mcpctl.hints import Any
from mcpctl.i18n import _

LEND_ID = "mcpctl-lend"
# How long the shim may take to answer the lend (a shim of an older mcpctl refuses it at once).
ANSWER_WAIT = 10.0
# The least time between two reads of the journal: the shim's records wake this process at most
# 1/PACE times a second, however busy the client (they wait in the socket meanwhile, and the shim's
# last ones wait at most that long for room there).
PACE = 0.02


def lendable() -> bool:
    """Whether stdin and stdout are pipes or sockets, and this system can lend them."""
    if not hasattr(os, "RWF_NOWAIT"):
        return False
    try:
        modes = [os.fstat(fd).st_mode for fd in (0, 1)]
    except OSError:
        return False
    return all(stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) for mode in modes)


class Journal:
    """What the shim told of the client's session, as read from the tether so far."""

    def __init__(self) -> None:
        self.rest = bytearray()  # an unfinished record
        self.init: dict[str, Any] | None = None
        self.initialized = False
        self.inflight: set[str] = set()  # request ids, as JSON text
        self.partial = b""  # the start of the client's line that the shim had not read whole
        self.cut = False  # the shim was discarding an oversized line: its rest is dropped
        self.open_line = False  # the shim let go in the middle of a line to the client's stdout
        self.overrun: int | None = None  # the shim let go because the client left more than this unread
        self.ended = False  # the client left: nothing to carry over

    def feed(self, data: bytes) -> None:
        """Take more of the journal (newlines are searched for in `data` only: a half-read line handed
        back can be as long as a message)."""
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            self.rest += data[start:newline]
            record, self.rest = bytes(self.rest), bytearray()
            self._record(record[:1], record[1:])
            start = newline + 1
        self.rest += data[start:]

    def _record(self, kind: bytes, body: bytes) -> None:
        if kind == b"+":
            self.inflight.add(body.decode("utf-8", "replace"))
        elif kind == b"-":
            self.inflight.discard(body.decode("utf-8", "replace"))
        elif kind == b"i":
            with contextlib.suppress(protocol.ProtocolError):
                self.init = protocol.decode(body)
        elif kind == b"n":
            self.initialized = True
        elif kind == b"p":
            self.partial = body
        elif kind == b"c":
            self.cut = True
        elif kind == b"o":
            self.open_line = True
        elif kind == b"e":
            self.ended = True
        elif kind == b"u" and body.isdigit():
            self.overrun = int(body)
        # b"q": the shim let go on purpose (stopping, or closing this client); the tether's end says as much.


def lend(sock: socket.socket, drain: bool) -> Journal | None:
    """Send stdin and stdout to the shim; the journal to follow when it took them, None when it did not
    (the bridge then relays, on the same socket); Refused when it would not serve this client at all."""
    request = {"jsonrpc": "2.0", "id": LEND_ID, "method": LEND, "params": {"drain": drain}}
    pending = b""
    try:
        socket.send_fds(sock, [protocol.encode(request)], [0, 1])
        sock.settimeout(ANSWER_WAIT)
        while True:
            data = sock.recv(64 * 1024)
            if not data:
                return None
            *lines, pending = (pending + data).split(b"\n")
            for n, line in enumerate(lines):
                taken = _answer_of(line)
                if taken is None:
                    _early(line)
                    continue
                if not taken:
                    return None
                journal = Journal()
                journal.feed(b"\n".join([*lines[n + 1 :], pending]))
                return journal
    except OSError:  # TimeoutError among them: taken as a refusal
        return None
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(None)


def cut_off(name: str, limit: int | None) -> Failure | None:
    """Why the shim let go of the lent stdio, when it was the client's doing (it stopped reading stdout,
    with more than `limit` bytes waiting): said once on stderr, and what each request in flight is
    answered with. None when the shim let go for its own reasons (stopped, restarted, killed)."""
    if limit is None:
        return None
    said = _(
        "mcpctl: {name}: the client left more than {limit} bytes unread on stdout (max_message_bytes), so the "
        "shim let go of it; reconnecting (read stdout as it comes, or raise max_message_bytes of {name})"
    )
    sys.stderr.write(said.format(name=name, limit=limit) + "\n")
    why = f"the shim let go of this client, which left more than {limit} bytes unread on stdout (max_message_bytes)"
    message = Failure.of(ErrorType.CONNECTION_LOST, name=name, detail=why).message
    hint = f"read the answers as they come (or raise max_message_bytes of {name}), then send the request again"
    return Failure(ErrorType.CONNECTION_LOST, message, hint)


def _early(line: bytes) -> None:
    """A line before the answer: a notification is for a client that has not initialized (dropped); the
    shim's refusal (`max_clients`, no descriptors left) is the client's to read, and raises Refused: the
    shim closed the connection without taking the stdio."""
    try:
        message = protocol.decode(line)
    except protocol.ProtocolError:
        return
    if "method" not in message:
        with contextlib.suppress(OSError):
            os.write(1, line + b"\n")
        if (refusal := protocol.refusal(message)) is not None:
            raise Refused(refusal)


def _answer_of(line: bytes) -> bool | None:
    """For the answer to the lend: whether the stdio was taken; None for any other line."""
    try:
        message = protocol.decode(line)
    except protocol.ProtocolError:
        return None
    if message.get("id") != LEND_ID or "method" in message:
        return None
    result = message.get("result")
    return isinstance(result, dict) and result.get("lent") is True


def hold(sock: socket.socket, journal: Journal) -> Journal:
    """Sleep until the shim lets go of the client (the tether's end), reading the journal now and then."""
    poller, pacing = select.poll(), False
    poller.register(sock.fileno(), select.POLLIN)
    sock.setblocking(False)
    while True:
        # Pacing, only the tether's end (POLLHUP, always reported) wakes this process: a record does not.
        poller.modify(sock.fileno(), 0 if pacing else select.POLLIN)
        woke = poller.poll(PACE * 1000 if pacing else None)
        if (woke or not pacing) and not _read(sock, journal):
            sock.close()
            return journal
        pacing = not pacing


def _read(sock: socket.socket, journal: Journal) -> bool:
    """Take what the tether has; False once it ended."""
    while True:
        try:
            data = sock.recv(64 * 1024)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        journal.feed(data)
