"""The settings of a `[servers.NAME]` table, each named once: its kind, its default, what a change needs.

Everything else that lists settings is derived from `SETTINGS`: the validators (config.checks), the
settings a running shim takes in place (contract.UPDATABLE), the spec a shim is given (control.launch),
the config hash and the impact of a change (config.views). The two dataclasses that hold settings
(config.model.ServerConfig, contract.Spec) spell their fields out for the type checker; a unit test
holds them to this table. It lives in the shared layer because the shim imports the contract.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from mcpctl import constants as C
from mcpctl.lean import Record, dataclass
from mcpctl.states import Readiness


class Kind(StrEnum):
    """What a setting's value must be (each has one validator in config.checks)."""

    TEXT = "text"  # a non-empty string
    TEXTS = "texts"  # a list of strings
    TEXT_TABLE = "text_table"  # NAME = "value"
    URL = "url"  # http:// or https://
    SECONDS = "seconds"  # a positive number, kept as a float
    POSITIVE = "positive"  # a whole number of at least 1
    COUNT = "count"  # a whole number of at least 0
    FLAG = "flag"  # true or false
    CHOICE = "choice"  # one of the setting's choices
    REGEX = "regex"
    TABLES = "tables"  # a table of tables
    PATHS = "paths"  # one path or a list of them
    ENV_NAMES = "env_names"  # a list of variable names
    FLAG_OR_ENV_NAMES = "flag_or_env_names"  # true, false, or a list of variable names
    GLOB_LISTS = "glob_lists"  # a table of `allow` and `deny` lists of glob patterns


class Impact(StrEnum):
    """What a change of a setting needs."""

    RESTART = "restart"  # the server runs with it: restart the server
    UPDATE = "update"  # the shim acts on it: `apply` sends it to the running shim (`mcpctl/update`)
    NONE = "none"  # read by each command (the timeouts may be overridden per command anyway)


@dataclass(frozen=True)
class Setting(Record):
    """One setting: its kind, default and what changing it takes."""

    name: str
    kind: Kind
    default: object
    impact: Impact
    spec: bool = True  # the shim's Spec carries it (as written, or resolved by the CLI: args, env, ...)
    choices: tuple[str, ...] = ()


_EMPTY: MappingProxyType[str, object] = MappingProxyType({})
_R, _U, _N = Impact.RESTART, Impact.UPDATE, Impact.NONE

# In the order of ServerConfig's fields, which is the order of a view and of `config export`.
SETTINGS = (
    Setting("command", Kind.TEXT, None, _R),
    Setting("args", Kind.TEXTS, (), _R),
    Setting("env", Kind.TEXT_TABLE, _EMPTY, _R),
    Setting("cwd", Kind.TEXT, None, _R),
    Setting("url", Kind.URL, None, _R),
    Setting("headers", Kind.TEXT_TABLE, _EMPTY, _R),  # sent with every request to `url`; values are secrets
    Setting("startup_timeout", Kind.SECONDS, C.DEFAULT_STARTUP_TIMEOUT, _N),
    Setting("stop_timeout", Kind.SECONDS, C.DEFAULT_STOP_TIMEOUT, _N),
    Setting("readiness", Kind.CHOICE, Readiness.MCP, _R, choices=tuple(mode.value for mode in Readiness)),
    Setting("protocol", Kind.CHOICE, "auto", _R, choices=("auto", "legacy")),  # "legacy": no server/discover probe
    Setting("ready_pattern", Kind.REGEX, None, _R),
    Setting("ready_after", Kind.SECONDS, C.DEFAULT_READY_AFTER, _U),
    Setting("restart", Kind.CHOICE, C.DEFAULT_RESTART, _U, choices=C.RESTART_POLICIES),
    Setting("backoff_base", Kind.SECONDS, C.DEFAULT_BACKOFF_BASE, _U),
    Setting("backoff_max", Kind.SECONDS, C.DEFAULT_BACKOFF_MAX, _U),
    Setting("max_failures", Kind.POSITIVE, C.DEFAULT_MAX_FAILURES, _U),
    Setting("reset_after", Kind.SECONDS, C.DEFAULT_RESET_AFTER, _U),
    Setting("cooldown_base", Kind.SECONDS, C.DEFAULT_COOLDOWN_BASE, _U),
    Setting("cooldown_max", Kind.SECONDS, C.DEFAULT_COOLDOWN_MAX, _U),
    Setting("health_interval", Kind.SECONDS, C.DEFAULT_HEALTH_INTERVAL, _U),
    Setting("health_timeout", Kind.SECONDS, C.DEFAULT_HEALTH_TIMEOUT, _U),
    Setting("unhealthy_after", Kind.POSITIVE, C.DEFAULT_UNHEALTHY_AFTER, _U),
    Setting("restart_on_unhealthy", Kind.FLAG, True, _U),
    Setting("metrics_interval", Kind.SECONDS, C.DEFAULT_METRICS_INTERVAL, _U),
    Setting("log_max_bytes", Kind.POSITIVE, C.DEFAULT_LOG_MAX_BYTES, _U),
    Setting("log_backups", Kind.COUNT, C.DEFAULT_LOG_BACKUPS, _U),
    Setting("max_message_bytes", Kind.POSITIVE, C.DEFAULT_MAX_MESSAGE_BYTES, _R),
    # "shared": every client on the one server process; "per-client": a process of its own for each client.
    Setting("share", Kind.CHOICE, C.DEFAULT_SHARE, _R, choices=C.SHARE_MODES),
    # Client requests in flight to a server process at once; the rest queue (None: no limit).
    Setting("max_concurrency", Kind.POSITIVE, None, _R),
    Setting("max_clients", Kind.POSITIVE, C.DEFAULT_MAX_CLIENTS, _U),  # read by the shim at each accept
    Setting("alerts", Kind.TABLES, _EMPTY, _U),  # overlaid on the global [alerts.NAME] tables
    # Read by the CLI as it resolves the environment; the shim gets the result, not these.
    Setting("env_file", Kind.PATHS, (), _R, spec=False),
    Setting("inherit_env", Kind.FLAG_OR_ENV_NAMES, True, _R, spec=False),
    Setting("required_env", Kind.ENV_NAMES, (), _N, spec=False),
    Setting("env_rules", Kind.TABLES, _EMPTY, _N, spec=False),
    # false: kept in the file but never run (an SSE-only server imported from a client, say)
    Setting("enabled", Kind.FLAG, True, _N, spec=False),
    # The gateway's filter of this server's tools: `allow` and `deny` lists of globs (read by the gateway).
    Setting("tools", Kind.GLOB_LISTS, _EMPTY, _N, spec=False),
)

NAMES = tuple(setting.name for setting in SETTINGS)
BY_NAME = MappingProxyType({setting.name: setting for setting in SETTINGS})
IN_SPEC = tuple(setting.name for setting in SETTINGS if setting.spec)


def having(impact: Impact) -> tuple[str, ...]:
    """The names of the settings whose change needs `impact`, in the registry's order."""
    return tuple(setting.name for setting in SETTINGS if setting.impact == impact)
