"""`mcpctl connect` when its server cannot be reached: the client's first request is answered with why.

(The bridge itself, between the client's stdio and the shim's socket, is `bridge`; `watch_parent` is
how it notices that its client died.)
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time

from mcpctl import protocol
from mcpctl.errors import Failure

CHUNK = 64 * 1024
# How often the bridge checks that the client that spawned it is still alive.
PARENT_POLL = 0.25
# How long a `connect` that cannot reach its server waits for the client's first message, to answer it.
FIRST_MESSAGE_WAIT = 10.0
# An initialize is a few hundred bytes; past this the first line is not one worth answering.
FIRST_MESSAGE_LIMIT = 1024 * 1024


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
