"""A loaded config as frozen dataclasses: its servers and its global tables, and its problems.

Reading and validating a file is config.load; the settings and their defaults are named in
mcpctl.settings, which a unit test holds ServerConfig to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from mcpctl import constants as C
from mcpctl.constants import CONFIG_FILENAME, DEFAULT_STARTUP_TIMEOUT, DEFAULT_STOP_TIMEOUT, ENV_CONFIG
from mcpctl.errors import KINDS, ConfigError, ErrorType, UnknownServerError
from mcpctl.hints import Any
from mcpctl.i18n import N_, _
from mcpctl.lean import Record, dataclass


@dataclass(frozen=True)
class ServerConfig(Record):
    """One server as the config file describes it, validated (mcpctl/settings.py lists every setting)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    readiness: str = "mcp"
    protocol: str = "auto"
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
    max_clients: int = C.DEFAULT_MAX_CLIENTS
    alerts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env_file: tuple[str, ...] = ()
    inherit_env: bool | tuple[str, ...] = True
    required_env: tuple[str, ...] = ()
    env_rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    enabled: bool = True
    tools: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # the gateway's allow/deny globs

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


@dataclass(frozen=True)
class GatewayConfig(Record):
    """The [gateway] table: where the HTTP gateway listens and whom it lets in."""

    listen: str = C.DEFAULT_GATEWAY_LISTEN
    tls_cert: str | None = None  # as written, relative to the config file (Config.file_path resolves it)
    tls_key: str | None = None
    allowed_origins: tuple[str, ...] = ()
    insecure: bool = False  # a non-loopback listen address without TLS, on purpose
    metrics_public: bool = False  # /metrics without a token
    auto_start: bool = True  # a request to /servers/NAME/mcp starts NAME when it is not running
    max_sessions: int = C.DEFAULT_GATEWAY_MAX_SESSIONS  # open HTTP sessions per token
    session_idle_timeout: float = C.DEFAULT_GATEWAY_SESSION_IDLE_TIMEOUT  # an unused session, no stream open, ends

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class Config(Record):
    """A config file, validated: its servers, env rules, alerts and gateway."""

    path: Path | None
    servers: Mapping[str, ServerConfig]
    env_rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    alerts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    disabled: Mapping[str, ServerConfig] = field(default_factory=dict)  # `enabled = false`: kept, never run
    gateway: GatewayConfig | None = None  # [gateway]: None when the file has no such table
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # [groups.NAME] servers = [...]
    project_key: str | None = None  # `project = "..."` as written
    home_key: str | None = None  # `home = "..."` as written (relative to the file)

    @property
    def project(self) -> str:
        """`project = "..."`, else the config file's directory name made a project name."""
        if self.project_key:
            return self.project_key
        return project_name(self.path.absolute().parent.name) if self.path else DEFAULT_PROJECT

    @property
    def home(self) -> Path | None:
        """The state dir `home = "..."` names (relative to the config file's folder), if it names one."""
        if not self.home_key:
            return None
        return Path(os.path.normpath(self.base_dir / Path(self.home_key).expanduser()))

    def alerts_for(self, server: ServerConfig) -> dict[str, Mapping[str, Any]]:
        """Global [alerts.NAME] overlaid with the server's own; empty means the built-in defaults."""
        return {**self.alerts, **server.alerts}

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config (cwd, env_file) are relative to the config file's folder."""
        return self.path.parent.absolute() if self.path else Path.cwd()

    def file_path(self, written: str | None) -> str | None:
        """A path as the config writes it (the gateway's tls_cert, tls_key), made absolute."""
        return str(self.base_dir / written) if written else None

    def select(self, names: list[str], everything: bool) -> list[ServerConfig]:
        """The servers a command acts on; unknown names are an error naming the config file."""
        if everything:
            return list(self.servers.values())
        unknown = [name for name in names if name not in self.servers]
        if unknown:
            raise unknown_server(unknown[0], self)
        return [self.servers[name] for name in dict.fromkeys(names)]

    def known(self, stored: list[str], names: list[str] | None, everything: bool) -> list[ServerConfig]:
        """Configured servers plus those the state dir knows (`stored`): a server removed from the config
        can still be stopped, and its status and logs read."""
        extra = {n: ServerConfig(name=n) for n in stored if n not in self.servers}
        if everything or not names:
            return [*self.servers.values(), *extra.values()]
        known = {**extra, **self.servers}
        missing = [n for n in names if n not in known]
        if missing:
            raise unknown_server(missing[0], self)
        return [known[n] for n in dict.fromkeys(names)]


# Every top-level key a config file may hold (config/load.py reads them, config/document.py writes them).
TOP_LEVEL = ("project", "home", "servers", "env_rules", "alerts", "gateway", "groups")
DEFAULT_PROJECT = "default"
PROJECT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def project_name(text: str) -> str:
    """A directory name as a project name: lower case, other characters as '-', at most 64."""
    name = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")[:64].strip("-_")
    return name or DEFAULT_PROJECT


def unknown_server(name: str, config: Config) -> UnknownServerError:
    where = str(config.path) if config.path else _("no config file")
    if name in config.disabled:
        disabled = _("server {name!r} is disabled in {where} (enabled = false)").format(name=name, where=where)
        return UnknownServerError(disabled, _("set enabled = true to run it"))
    import difflib  # only for this error

    close = difflib.get_close_matches(name, list(config.servers), n=1)
    hint = (
        _("did you mean {name!r}?").format(name=close[0])
        if close
        else _("run `mcpctl list` to see the configured servers")
    )
    if config.path is None:
        return UnknownServerError(_("unknown server {name!r}: no config file was found").format(name=name), hint)
    return UnknownServerError(_("unknown server {name!r} (not in {where})").format(name=name, where=where), hint)


def no_config_found() -> ConfigError:
    """No config file where the search looks (neither -f nor $MCPCTL_CONFIG named one): where it looked."""
    from mcpctl.paths import user_config_dir

    where = _(
        "no {file} found in {folder} or a folder above it, nor in {user_dir} (and neither -f nor ${variable} names one)"
    )
    found = where.format(file=CONFIG_FILENAME, folder=Path.cwd(), user_dir=user_config_dir(), variable=ENV_CONFIG)
    return ConfigError(found, _("run `mcpctl init` to create one here, or pass -f PATH"))


def empty_config() -> Config:
    return Config(None, {})


@dataclass(frozen=True)
class Problem(Record):
    """One thing wrong with a config: a line naming the file, the server and the field, for people and scripts."""

    text: str
    file: str
    server: str | None = None
    field: str | None = None
    hint: str = ""

    def __post_init__(self) -> None:
        # One line, whatever a name or value in the file contained (a key may hold a newline).
        object.__setattr__(self, "text", self.text.replace("\r", "\\r").replace("\n", "\\n"))

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "server": self.server, "field": self.field, "message": self.text}


def config_error(problems: list[Problem]) -> ConfigError:
    texts = [problem.text for problem in problems]
    hint = problems[0].hint if len(problems) == 1 and problems[0].hint else _hint_for(texts)
    return ConfigError(texts[0], hint, details=texts)


class InvalidConfig(ConfigError):
    """A config file that does not load (config/load.py), and which file it is: `stop` and `status` act
    on its project's records instead (control/projects.recorded), since what runs is the state dir's to say."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        error = config_error(problems)
        super().__init__(error.message, error.hint, details=error.details)
        self.path = path


class UntrustedFile(ConfigError):
    """A config or env file the trust rules refuse (config/trust.py), and the config file it belongs to:
    `stop` and `status` act on that file's records instead, without reading it (control/projects.recorded)."""

    def __init__(self, message: str, hint: str, path: Path) -> None:
        super().__init__(message, hint)
        self.path = path


MORE = N_("{count} more problem(s) listed above; fix the config file and run the command again")


def _hint_for(problems: list[str]) -> str:
    return MORE.format(count=len(problems) - 1) if len(problems) > 1 else KINDS[ErrorType.CONFIG_INVALID].hint
