"""The CLI↔shim contract, in one place both sides import.

- The spec: what the CLI hands a shim on its stdin, one server's settings resolved (env included: secret).
- The report pipe: the shim's stdout, on which it tells the CLI that started it `locked` (or `busy`),
  then how the first start went (`ready`, `failed` or `stopped`), one JSON object a line.
- Control methods: requests under `mcpctl/` on the shim's control socket (MCP has a socket of its own).
"""

from __future__ import annotations

from dataclasses import field, replace
from enum import StrEnum

from mcpctl import alerts
from mcpctl import constants as C
from mcpctl.hints import Any
from mcpctl.lean import Record, dataclass
from mcpctl.settings import Impact, having

CONTROL_PREFIX = "mcpctl/"
# The first message of `mcpctl connect` on a shim's socket, sent with its stdin and stdout (shim/lent.py).
LEND = CONTROL_PREFIX + "lend"


class Control(StrEnum):
    """Control methods on the shim's socket."""

    STATUS = "mcpctl/status"  # the shim's record, fresh (params {"save": true}: and its file rewritten)
    STOP = "mcpctl/stop"  # end the server's tree and exit
    RETRY = "mcpctl/retry"  # in backoff: try now, as a person's start (`start --force`)
    UPDATE = "mcpctl/update"  # take new settings that need no restart (`apply`)
    RESTART = "mcpctl/restart"  # replace the server process in place, clients kept (`restart`, `apply`)
    # The values the server runs with that are secrets, as its start resolved them: what `call` and `tools`
    # mask (the asker's own shell may no longer resolve them). Only on this socket, which only its user reaches.
    SECRETS = C.CONTROL_SECRETS


class Report(StrEnum):
    """Events on the report pipe."""

    LOCKED = "locked"  # the shim holds the instance lock (carries its pid)
    BUSY = "busy"  # another shim holds it: this one exits
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


# Settings a running shim takes without restarting its server (`mcpctl apply` sends them as `mcpctl/update`).
UPDATABLE = having(Impact.UPDATE)


@dataclass(frozen=True)
class Spec(Record):
    """What the CLI tells the shim to run; env holds secrets, so it never reaches disk or argv.

    Its settings are those of `mcpctl.settings.IN_SPEC`, with the same defaults (a unit test holds them to it).
    """

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
    protocol: str = "auto"  # "legacy": the initialize handshake only, never the server/discover probe
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
    max_message_bytes: int = C.DEFAULT_MAX_MESSAGE_BYTES
    share: str = C.DEFAULT_SHARE
    max_concurrency: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # HTTP headers for `url` (resolved: secret)
    max_clients: int = C.DEFAULT_MAX_CLIENTS
    alerts: dict[str, Any] = field(default_factory=dict)  # [alerts.NAME] tables; empty: the defaults
    secrets: list[str] = field(default_factory=list)
    env_sources: dict[str, str] = field(default_factory=dict)  # names and where they came from: no values
    project: str = ""  # its files are under projects/PROJECT/ of the state dir ("": the layout before projects)
    config_file: str | None = None  # the config file that started it (absolute), kept in the record

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


def updated(spec: Spec, params: object) -> tuple[Spec, list[str]]:
    """`spec` with the settings of an `mcpctl/update` request, and the names of those that changed.

    Only UPDATABLE settings are taken; ValueError (and nothing changes) if any of them is unusable.
    """
    if not isinstance(params, dict) or not isinstance(params.get("settings"), dict):
        raise ValueError("expected params {settings: {...}, config_hash: ...}")
    digest = params.get("config_hash")
    if not isinstance(digest, str) or not digest:
        raise ValueError("config_hash: expected a string")
    settings = {key: value for key, value in params["settings"].items() if key in UPDATABLE}
    for key, value in settings.items():
        if not _same_kind(getattr(spec, key), value) and not (key == "log_backups" and value == 0):
            raise ValueError(f"{key}: unusable value {value!r}")
    if settings.get("restart", spec.restart) not in C.RESTART_POLICIES:
        raise ValueError(f"restart: expected one of {', '.join(C.RESTART_POLICIES)}")
    if problems := alerts.problems(settings.get("alerts", {})):
        raise ValueError(f"alerts.{problems[0]}")
    changed = sorted(key for key, value in settings.items() if getattr(spec, key) != value)
    return replace(spec, **settings, config_hash=digest), changed


def respec(spec: Spec, params: object) -> Spec:
    """The spec an `mcpctl/restart` request carries (the config as the CLI reads it now); ValueError when it
    is missing, unusable or another server's."""
    given = params.get("spec") if isinstance(params, dict) else None
    if not isinstance(given, dict):
        raise ValueError("expected params {spec: {...}}")
    try:
        new = Spec(**given)
    except TypeError as exc:
        raise ValueError(f"spec: {exc}") from None
    if new.name != spec.name:
        raise ValueError(f"spec: for {new.name!r}, not {spec.name!r}")
    return new


def _same_kind(old: object, new: object) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, int | float):
        return isinstance(new, int | float) and new > 0
    return isinstance(new, type(old))
