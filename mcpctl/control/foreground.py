"""`mcpctl run NAME`: the checks a start makes, then this process becomes the server's shim.

The CLI resolves the environment (a wrong one is refused here, with the usual one line and exit 7),
refuses a server whose instance lock is held, writes the view `apply` and drift compare against, and
then execs `python -m mcpctl.shim NAME --foreground FORMAT` in its own place: same pid, so under
systemd or as a container's PID 1 the shim is the main process. The spec still goes through a pipe on
stdin (a small writer process feeds it, so no pipe capacity limits it), never argv or disk.
"""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

from mcpctl.config import views as snapshot
from mcpctl.config.model import ServerConfig
from mcpctl.constants import ENV_HOME
from mcpctl.control.controller import Controller
from mcpctl.control.launch import spec_of
from mcpctl.errors import BusyError, ErrorType, MCPCtlError


def become_shim(controller: Controller, server: ServerConfig, log_format: str) -> NoReturn:
    """Check, then exec the shim in the foreground; returns only by raising an MCPCtlError."""
    resolution = controller.resolve(server)
    if not resolution.ok:
        raise MCPCtlError.of(ErrorType.ENV_MISSING, name=server.name, detail="; ".join(resolution.problems))
    paths = controller.paths
    holder = controller.launcher.holder(server.name)
    if holder is not None:
        raise BusyError(
            f"{server.name} is already running (its shim is pid {holder})",
            f"`mcpctl stop {server.name}` first, or use the running one",
        )
    with controller.locked():
        controller.launcher.end_leftovers(controller.observe(server.name).record)
        paths.ensure_server(server.name)
        digest = snapshot.remember(paths, controller.config, server)
    alerts = controller.config.alerts_for(server)
    spec = spec_of(server, resolution, alerts, digest, paths.project, controller.origin)
    _feed_stdin(json.dumps(spec).encode())
    argv = [sys.executable, "-m", "mcpctl.shim", server.name, "--foreground", log_format]
    os.execve(argv[0], argv, {**os.environ, ENV_HOME: str(paths.home)})


def _feed_stdin(data: bytes) -> None:
    """Make stdin a pipe that yields `data`: a forked writer fills it (the shim, our successor, reaps it)."""
    read_end, write_end = os.pipe()
    if os.fork() == 0:  # pragma: no cover - the writer only writes and exits
        try:
            os.close(read_end)
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(0)
    os.close(write_end)
    os.dup2(read_end, 0)
    os.close(read_end)
