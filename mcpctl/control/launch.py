"""Spawning a shim fully detached (double fork, new session) and listening to what it reports."""

from __future__ import annotations

import json
import os
import select
import sys
import time
from dataclasses import dataclass
from typing import Any

from mcpctl.config.environment import Resolution
from mcpctl.config.model import ServerConfig
from mcpctl.constants import ENV_HOME
from mcpctl.paths import Paths
from mcpctl.settings import IN_SPEC


@dataclass
class Launch:
    """A shim just spawned: the read end of its report pipe and what it has said so far."""

    server: ServerConfig
    fd: int
    buffer: bytes = b""
    events: list[dict[str, Any]] | None = None

    def read_events(self) -> list[dict[str, Any]] | None:
        """New events; None once the shim closed its end (it reported its outcome, or died)."""
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def spawn_shim(
    paths: Paths, server: ServerConfig, resolved: Resolution, alert_tables: dict[str, Any], config_hash: str
) -> Launch:
    """Start `python -m mcpctl.shim NAME` in a new session, its parent already gone.

    The spec holds the resolved environment, and so the secrets: it goes through a pipe, never argv.
    """
    filled = {
        "args": resolved.args,
        "env": resolved.env,
        "cwd": resolved.cwd,
        "url": resolved.url,
        "config_hash": config_hash,
        "secrets": resolved.secrets,
        "env_sources": resolved.sources(),
        "alerts": alert_tables,
    }
    # The other settings the shim takes as they are written.
    as_written = {name: getattr(server, name) for name in IN_SPEC if name not in filled}
    spec = {"name": server.name, **as_written, **filled}
    spec_read, spec_write = os.pipe()
    report_read, report_write = os.pipe()
    log_fd = os.open(paths.log_file(server.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    argv = [sys.executable, "-m", "mcpctl.shim", server.name]
    env = {**os.environ, ENV_HOME: str(paths.home)}
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child, which only ever execs or exits
        try:
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            os.dup2(spec_read, 0)
            os.dup2(report_write, 1)
            os.dup2(log_fd, 2)
            os.chdir("/")
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    for fd in (spec_read, report_write, log_fd):
        os.close(fd)
    os.waitpid(pid, 0)
    try:
        os.write(spec_write, json.dumps(spec).encode())
    except OSError:
        pass  # the shim died at once; its silence on the report pipe says so
    finally:
        os.close(spec_write)
    os.set_blocking(report_read, False)
    return Launch(server, report_read)


def wait_events(launches: list[Launch], until: set[str], deadline: float) -> None:
    """Collect events from every launch until each reported one of `until`, closed, or time ran out."""
    pending = {launch.fd: launch for launch in launches}
    for launch in launches:
        launch.events = launch.events or []
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        ready, _, _ = select.select(list(pending), [], [], min(remaining, 1.0))
        for fd in ready:
            launch = pending[fd]
            events = launch.read_events()
            assert launch.events is not None
            if events is None:
                del pending[fd]
                continue
            launch.events.extend(events)
            if any(event.get("event") in until for event in events):
                del pending[fd]
