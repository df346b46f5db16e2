"""`mcpctl gateway start|stop|status`: the gateway process seen from the CLI (no HTTP stack imported here)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcpctl import process
from mcpctl.constants import ENV_HOME, POLL_INTERVAL
from mcpctl.errors import ConfigError, ErrorType, MCPCtlError
from mcpctl.gateway import record
from mcpctl.paths import Paths
from mcpctl.privdir import open_own

REPORT_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class GatewayError(MCPCtlError):
    type = ErrorType.SPAWN_FAILED  # exit 4, as a server that does not start


def start(paths: Paths, config_path: Path) -> dict[str, Any]:
    """Start the gateway unless one runs; its observed record with `outcome` started or running."""
    if record.holder(paths) is not None:
        return {**record.observed(paths), "outcome": "running"}
    paths.ensure_gateway()
    log = open_own(paths.gateway_file(record.LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcpctl.gateway", str(config_path.absolute())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, ENV_HOME: str(paths.home)},
            cwd="/",
            start_new_session=True,  # it outlives this command and its terminal
        )
    finally:
        os.close(log)
    assert proc.stdout is not None
    said = _first_report(proc.stdout.fileno(), time.monotonic() + REPORT_TIMEOUT)
    proc.stdout.close()
    if said.get("event") == "failed":
        kind = ConfigError if said.get("type") == ErrorType.CONFIG_INVALID else GatewayError
        details = said.get("details")
        lines = [str(line) for line in details] if isinstance(details, list) else []
        hint = str(said.get("hint") or f"see {paths.gateway_file(record.LOG)}")
        raise kind(str(said.get("error")), hint, details=lines)
    if said.get("event") not in ("ready", "busy"):
        log_path = paths.gateway_file(record.LOG)
        raise GatewayError("the gateway exited before it was ready", f"see its log: tail {log_path}")
    outcome = "started" if said.get("event") == "ready" else "running"
    return {**record.observed(paths), "outcome": outcome}


def _first_report(fd: int, deadline: float) -> dict[str, Any]:
    buffer = b""
    while b"\n" not in buffer:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return {}
        chunk = os.read(fd, 4096)
        if not chunk:
            return {}
        buffer += chunk
    try:
        said = json.loads(buffer.split(b"\n", 1)[0])
    except ValueError:
        return {}
    return said if isinstance(said, dict) else {}


def stop(paths: Paths, timeout: float = STOP_TIMEOUT) -> dict[str, Any]:
    """SIGTERM to the gateway (SIGKILL after `timeout`); returns once it let go of its lock."""
    pid = record.holder(paths)
    if pid is None:
        return {**record.observed(paths), "outcome": "not_running"}
    for sig in (signal.SIGTERM, signal.SIGKILL):  # then give up: never wait for ever on a lock holder
        process.signal_if_running(pid, "mcpctl.gateway", sig)
        deadline = time.monotonic() + timeout
        while record.holder(paths) is not None and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
        if record.holder(paths) is None:
            return {**record.observed(paths), "outcome": "stopped"}
    raise MCPCtlError(
        f"the gateway (pid {pid}) still holds its lock after SIGTERM and SIGKILL",
        f"see `ps -o pid,stat,cmd -p {pid}`: a process stuck in the kernel (state D) ends only when that call returns",
    )


def status(paths: Paths) -> dict[str, Any]:
    return record.observed(paths)
