"""What a run's readiness said (`Ready`), and what a ready run's exit was (`crash`)."""

from __future__ import annotations

from pathlib import Path

from mcpctl.errors import ErrorType, Failure, classify_exit
from mcpctl.hints import Any


class Ready:
    """Readiness held: what the handshake said (empty for "log" and "alive" readiness)."""

    def __init__(
        self, result: dict[str, Any], session: str | None = None, era: str = "legacy", config_hash: str | None = None
    ) -> None:
        from mcpctl.shim.era import server_info

        self.result = result  # initialize's (legacy) or server/discover's (modern): the bridge answers from it
        self.session = session  # an HTTP server's Mcp-Session-Id
        self.era = era
        self.server_info = server_info(era, result, config_hash)
        self.moved: dict[str, Any] = {}  # the pid, when the run had to spawn its server again

    def record_changes(self) -> dict[str, Any]:
        """What the record takes from readiness."""
        return {"server_info": self.server_info, **self.moved}


def crash(name: str, code: int, uptime: float, log_path: Path) -> Failure | None:
    """What a ready run's exit was: a crash after `uptime` seconds, or None when it exited 0."""
    if code == 0:
        return None
    up = f"{uptime:.0f}s" if uptime < 120 else f"{uptime / 60:.0f}m"
    return Failure.of(ErrorType.CRASHED, name=name, exit=classify_exit(code), uptime=up, log=log_path)
