"""What the CLI hands a shim: one server's settings, resolved (the environment included, so: secret)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcpctl import constants as C


@dataclass(frozen=True)
class Spec:
    """What the CLI tells the shim to run; env holds secrets, so it never reaches disk or argv."""

    name: str
    command: str | None
    args: list[str]
    env: dict[str, str]
    cwd: str | None
    url: str | None
    startup_timeout: float
    stop_timeout: float
    config_hash: str
    readiness: str = "mcp"
    ready_pattern: str | None = None
    ready_after: float = C.DEFAULT_READY_AFTER
    restart: str = C.DEFAULT_RESTART
    backoff_base: float = C.DEFAULT_BACKOFF_BASE
    backoff_max: float = C.DEFAULT_BACKOFF_MAX
    max_failures: int = C.DEFAULT_MAX_FAILURES
    reset_after: float = C.DEFAULT_RESET_AFTER
    cooldown_base: float = C.DEFAULT_COOLDOWN_BASE
    cooldown_max: float = C.DEFAULT_COOLDOWN_MAX
    health_interval: float = C.DEFAULT_HEALTH_INTERVAL
    health_timeout: float = C.DEFAULT_HEALTH_TIMEOUT
    unhealthy_after: int = C.DEFAULT_UNHEALTHY_AFTER
    restart_on_unhealthy: bool = True
    metrics_interval: float = C.DEFAULT_METRICS_INTERVAL
    log_max_bytes: int = C.DEFAULT_LOG_MAX_BYTES
    log_backups: int = C.DEFAULT_LOG_BACKUPS
    alerts: dict[str, Any] = field(default_factory=dict)  # [alerts.NAME] tables; empty: the defaults
    secrets: list[str] = field(default_factory=list)
    env_sources: dict[str, str] = field(default_factory=dict)  # names and where they came from: no values

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"
