"""What a run's readiness said (`Ready`), and what a ready run's exit was (`crash`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcpctl.errors import ErrorType, Failure, classify_exit


class Ready:
    """Readiness held: what the handshake said (empty for "log" and "alive" readiness)."""

    def __init__(self, result: dict[str, Any], session: str | None = None) -> None:
        self.result = result  # answered to every client's initialize by the multiplexer
        self.session = session  # an HTTP server's Mcp-Session-Id
        info = result.get("serverInfo")
        info = info if isinstance(info, dict) else {}
        self.server_info = {
            "name": str(info.get("name", "")),
            "version": str(info.get("version", "")),
            "protocol_version": str(result.get("protocolVersion", "")),
        }


def crash(name: str, code: int, uptime: float, log_path: Path) -> Failure | None:
    """What a ready run's exit was: a crash after `uptime` seconds, or None when it exited 0."""
    if code == 0:
        return None
    up = f"{uptime:.0f}s" if uptime < 120 else f"{uptime / 60:.0f}m"
    return Failure.of(ErrorType.CRASHED, name=name, exit=classify_exit(code), uptime=up, log=log_path)
