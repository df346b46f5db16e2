"""`mcpctl connect`: a byte pump between this process's stdin/stdout and a shim's socket.

Any MCP client that can spawn a stdio server can then use the shared, warm session. No parsing
happens here (the shim does the JSON-RPC); a message costs one read and one write on each side.

A stdio client leaves by closing our stdin (or by dying): that is a disconnect. The bridge closes its
socket, so the shim cancels what the client has in flight and frees what it held, and exits. With
`drain` (`connect --drain`, for scripts that pipe requests in) stdin's end only half-closes the
socket: the shim answers what is in flight, then closes.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time

from mcpctl import protocol
from mcpctl.errors import Failure

CHUNK = 256 * 1024
# After stdin's end, how long the bridge lets its last write to stdout finish before it exits anyway.
EXIT_GRACE = 1.0
# How often the bridge checks that the client that spawned it is still alive.
PARENT_POLL = 0.25
# How long a `connect` that cannot reach its server waits for the client's first message, to answer it.
FIRST_MESSAGE_WAIT = 10.0
# An initialize is a few hundred bytes; past this the first line is not one worth answering.
FIRST_MESSAGE_LIMIT = 1024 * 1024


def pump(sock: socket.socket, drain: bool = False) -> bool:
    """Copy stdin to the socket and the socket to stdout until the shim closes the connection, or,
    unless `drain`, until stdin ends.

    True when the client ended the conversation (closed stdin, or stopped reading), False when the
    shim went away while the client was still talking.
    """
    sock.setblocking(True)
    client_done = threading.Event()
    threading.Thread(target=_upstream, args=(sock, client_done, drain), daemon=True).start()
    while True:
        try:
            data = sock.recv(CHUNK)
        except OSError:
            data = b""
        if not data:
            return client_done.is_set()
        try:
            _write_all(1, data)
        except OSError:  # the client closed its stdin end: it is gone
            return True


def _upstream(sock: socket.socket, done: threading.Event, drain: bool) -> None:
    while True:
        try:
            data = os.read(0, CHUNK)
        except OSError:
            data = b""
        if not data:
            done.set()
            with contextlib.suppress(OSError):  # drain: the shim answers what is in flight, then closes
                sock.shutdown(socket.SHUT_WR if drain else socket.SHUT_RDWR)
            if not drain:  # the pump's recv returns at once; a write to a client that stopped reading may not
                time.sleep(EXIT_GRACE)
                os._exit(0)
            return
        try:
            sock.sendall(data)
        except OSError:
            return


def watch_parent() -> None:
    """Exit when the process that started this one dies: a bridge must not outlive its client. (A
    poll of the parent's pid, not PR_SET_PDEATHSIG: that fires when the spawning *thread* ends.)"""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def refuse(failure: Failure, wait: float = FIRST_MESSAGE_WAIT) -> None:
    """Answer the client's first request with `failure`, so that a client that hides the bridge's
    stderr still shows why it has no server. Nothing is written when no request comes within `wait`
    seconds, stdin closes, or the first message is not a request."""
    line = _first_line(time.monotonic() + wait)
    try:
        message = protocol.decode(line)
    except protocol.ProtocolError:
        return
    if "method" in message and "id" in message:
        with contextlib.suppress(OSError):  # the client may be gone already: nothing more to tell it
            _write_all(1, protocol.encode(protocol.failure_response(message["id"], failure)))


def _first_line(deadline: float) -> bytes:
    buffer = b""
    while b"\n" not in buffer and len(buffer) < FIRST_MESSAGE_LIMIT:
        left = deadline - time.monotonic()
        try:
            if left <= 0 or not select.select([0], [], [], left)[0]:
                return b""
            data = os.read(0, CHUNK)
        except (OSError, ValueError):  # no stdin at all (closed fd): there is nobody to answer
            return b""
        if not data:
            return buffer
        buffer += data
    return buffer.split(b"\n", 1)[0]
