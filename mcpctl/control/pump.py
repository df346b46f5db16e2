"""`mcpctl connect`: a byte pump between this process's stdin/stdout and a shim's socket.

Any MCP client that can spawn a stdio server can then use the shared, warm session. No parsing
happens here (the shim does the JSON-RPC); a message costs one read and one write on each side.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading

CHUNK = 256 * 1024


def pump(sock: socket.socket) -> bool:
    """Copy stdin to the socket and the socket to stdout until the shim closes the connection.

    True when the client ended the conversation (closed stdin, or stopped reading), False when the
    shim went away while the client was still talking.
    """
    sock.setblocking(True)
    client_done = threading.Event()
    threading.Thread(target=_upstream, args=(sock, client_done), daemon=True).start()
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


def _upstream(sock: socket.socket, done: threading.Event) -> None:
    while True:
        try:
            data = os.read(0, CHUNK)
        except OSError:
            data = b""
        if not data:
            done.set()
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)  # the shim answers what is in flight, then closes
            return
        try:
            sock.sendall(data)
        except OSError:
            return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
