"""Load and validate mcpctl.toml (or an `mcpServers` JSON file) into frozen dataclasses."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpctl import alerts
from mcpctl import constants as C
from mcpctl.constants import CONFIG_FILENAME, DEFAULT_STARTUP_TIMEOUT, DEFAULT_STOP_TIMEOUT, ENV_CONFIG
from mcpctl.errors import ConfigError, UnknownServerError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Keys that MCP clients put in their JSON files and that mean nothing to mcpctl beyond the transport.
_JSON_CLIENT_KEYS = frozenset({"type"})


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
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
    alerts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env_file: tuple[str, ...] = ()
    inherit_env: bool | tuple[str, ...] = True
    required_env: tuple[str, ...] = ()
    env_rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


@dataclass(frozen=True)
class Config:
    path: Path | None
    servers: Mapping[str, ServerConfig]
    env_rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    alerts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def alerts_for(self, server: ServerConfig) -> dict[str, Mapping[str, Any]]:
        """Global [alerts.NAME] overlaid with the server's own; empty means the built-in defaults."""
        return {**self.alerts, **server.alerts}

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config (cwd, env_file) are relative to the config file's folder."""
        return self.path.parent.absolute() if self.path else Path.cwd()

    def select(self, names: list[str], everything: bool) -> list[ServerConfig]:
        """The servers a command acts on; unknown names are an error naming the config file."""
        if everything:
            return list(self.servers.values())
        unknown = [name for name in names if name not in self.servers]
        if unknown:
            raise unknown_server(unknown[0], self)
        return [self.servers[name] for name in dict.fromkeys(names)]


def unknown_server(name: str, config: Config) -> UnknownServerError:
    where = str(config.path) if config.path else "no config file"
    close = difflib.get_close_matches(name, list(config.servers), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "run `mcpctl list` to see the configured servers"
    return UnknownServerError(f"unknown server {name!r} (not in {where})", hint)


def no_config_found() -> ConfigError:
    return ConfigError(
        f"no config file found (looked for -f, ${ENV_CONFIG}, ./{CONFIG_FILENAME} upward, the user config dir)",
        f"create {CONFIG_FILENAME} with a [servers.NAME] table, or pass -f PATH",
    )


def empty_config() -> Config:
    return Config(None, {})


@dataclass(frozen=True)
class Problem:
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


def load(path: Path) -> Config:
    """Read and validate a config file; every problem is reported at once, with file, server and field."""
    config, problems = validate(path)
    if problems:
        raise config_error(problems)
    assert config is not None
    return config


def config_error(problems: list[Problem]) -> ConfigError:
    texts = [problem.text for problem in problems]
    hint = problems[0].hint if len(problems) == 1 and problems[0].hint else _hint_for(texts)
    return ConfigError(texts[0], hint, details=texts)


def validate(path: Path) -> tuple[Config | None, list[Problem]]:
    """The config at `path` and every problem with it; the config is None when there is any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return None, [Problem(f"{path}: cannot read config: {reason}", str(path))]
    return parse(text, path)


def parse(text: str, path: Path) -> tuple[Config | None, list[Problem]]:
    """Validate config text as if read from `path` (its suffix picks JSON or TOML)."""
    json_dialect = path.suffix.lower() == ".json"
    try:
        data = parse_json(path, text) if json_dialect else _parse_toml(path, text)
    except ConfigError as exc:
        return None, [Problem(exc.message, str(path), hint=exc.hint)]
    return from_document(data, path, json_dialect)


def from_document(
    data: Mapping[str, Any], path: Path, json_dialect: bool = False
) -> tuple[Config | None, list[Problem]]:
    """Validate a parsed document ({"servers": ..., "env_rules": ..., "alerts": ...}); the one validator."""
    problems: list[Problem] = []
    file = str(path)
    for key in sorted(set(data) - _TOP_LEVEL):
        problems.append(
            Problem(f"{path}: unknown top-level key {key!r}", file, hint="servers go in [servers.NAME] tables")
        )
    raw_servers = _top_table(data, "servers", "[servers.NAME]", path, problems)
    servers: dict[str, ServerConfig] = {}
    folded: dict[str, str] = {}
    for name, table in raw_servers.items():
        where = f"{path}: servers.{name}"
        if not NAME_PATTERN.match(name):
            problems.append(Problem(f"{where}: invalid server name (use letters, digits, '.', '_' or '-')", file, name))
            continue
        if name.lower() in folded:
            text = f"{where}: duplicate of server {folded[name.lower()]!r} (names are case-insensitive)"
            problems.append(Problem(text, file, name))
            continue
        folded[name.lower()] = name
        found: list[str] = []
        server = _server(name, table, where, json_dialect, found)
        problems.extend(Problem(text, file, name, _field_of(text, where)) for text in found)
        if server is not None:
            servers[name] = server
    env_rules = _top_table(data, "env_rules", "[env_rules.VAR]", path, problems)
    problems.extend(Problem(f"{path}: env_rules.{p}", file, None, "env_rules") for p in _rules_problems(env_rules))
    alert_tables = _top_table(data, "alerts", "[alerts.NAME]", path, problems)
    problems.extend(Problem(f"{path}: alerts.{p}", file, None, "alerts") for p in alerts.problems(alert_tables))
    if problems:
        return None, problems
    return Config(path, servers, env_rules, alert_tables), []


_TOP_LEVEL = frozenset({"servers", "env_rules", "alerts"})


def _top_table(data: Mapping[str, Any], key: str, shape: str, path: Path, problems: list[Problem]) -> dict[str, Any]:
    value = data.get(key, {})
    if isinstance(value, dict):
        return value
    problems.append(Problem(f"{path}: {key}: expected tables {shape}", str(path), None, key))
    return {}


def _field_of(text: str, where: str) -> str | None:
    """The field a problem line of one server names: `WHERE.FIELD: ...` or `WHERE: unknown field 'X'`."""
    rest = text[len(where) :]
    if rest.startswith("."):
        return rest[1:].split(": ", 1)[0]
    quoted = re.match(r": unknown field '([^']+)'", rest)
    return quoted.group(1) if quoted else None


def _hint_for(problems: list[str]) -> str:
    more = f"{len(problems) - 1} more problem(s) listed above; " if len(problems) > 1 else ""
    return f"{more}fix the config file and run the command again"


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the syntax at the line named") from exc


def parse_json(path: Path, text: str) -> dict[str, Any]:
    """An `mcpServers` (or VS Code `servers`) object, plus mcpctl's own top-level env_rules and alerts;
    the other top-level keys belong to the client that wrote the file."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ConfigError(f"{path}: duplicate key {key!r}", "each server name may appear once")
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}", "fix the syntax at the line named") from exc
    servers = data.get("mcpServers", data.get("servers")) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(
            f'{path}: no "mcpServers" object found',
            'a JSON config looks like {"mcpServers": {"NAME": {"command": ..., "args": [...]}}}',
        )
    assert isinstance(data, dict)
    return {"servers": servers, **{key: data[key] for key in ("env_rules", "alerts") if key in data}}


def _server(
    name: str,
    table: object,
    where: str,
    json_dialect: bool,
    problems: list[str],
) -> ServerConfig | None:
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table of settings")
        return None
    before = len(problems)
    values = _checked_fields(table, where, json_dialect, problems)
    if not values.get("command") and not values.get("url") and len(problems) == before:
        problems.append(f"{where}: missing field 'command' (or 'url' for an HTTP server)")
    if len(problems) == before:
        problems.extend(f"{where}.{problem}" for problem in _cross_checks(values))
    if len(problems) > before:
        return None
    for key in ("args", "env_file", "required_env", "inherit_env"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    if isinstance(values.get("env_file"), str):
        values["env_file"] = (values["env_file"],)
    for key in _SECONDS:
        if key in values:
            values[key] = float(values[key])
    return ServerConfig(name=name, **values)


def _checked_fields(table: dict[str, Any], where: str, json_dialect: bool, problems: list[str]) -> dict[str, Any]:
    """The fields that passed their check; every other one becomes a problem naming it."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        if json_dialect and key in _JSON_CLIENT_KEYS:
            continue
        check = _FIELDS.get(key)
        if check is None:
            close = difflib.get_close_matches(key, list(_FIELDS), n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown field {key!r}{suggestion}")
            continue
        error = check(value)
        if error:
            problems.append(f"{where}.{key}: {error}")
        else:
            values[key] = value
    return values


def _cross_checks(values: dict[str, Any]) -> list[str]:
    readiness = values.get("readiness", "mcp")
    problems = []
    if readiness == "log" and not values.get("ready_pattern"):
        problems.append('ready_pattern: required with readiness = "log" (a regex matched on output lines)')
    if readiness != "log" and "ready_pattern" in values:
        problems.append('ready_pattern: only used with readiness = "log"')
    if readiness != "mcp" and values.get("url"):
        problems.append('readiness: an HTTP server (url) is judged by the MCP handshake; use readiness = "mcp"')
    if values.get("backoff_base", 0) > values.get("backoff_max", C.DEFAULT_BACKOFF_MAX):
        problems.append("backoff_base: larger than backoff_max")
    problems.extend(f"env_rules.{p}" for p in _rules_problems(values.get("env_rules", {})))
    problems.extend(f"alerts.{p}" for p in alerts.problems(values.get("alerts", {})))
    return problems


_RULE_FIELDS = {"required", "non_empty", "pattern", "min_length"}


def _rules_problems(rules: dict[str, Any]) -> list[str]:
    """Problems with a table of [env_rules.VAR] rules, each naming the variable and the field."""
    problems = []
    for var, rule in rules.items():
        if not ENV_NAME.fullmatch(var):
            problems.append(f"{var}: not a variable name")
        elif not isinstance(rule, dict):
            problems.append(f"{var}: expected a table of required, non_empty, pattern, min_length")
        else:
            for key in sorted(set(rule) - _RULE_FIELDS):
                problems.append(f"{var}: unknown field {key!r} (rules have {', '.join(sorted(_RULE_FIELDS))})")
            for key in ("required", "non_empty"):
                if key in rule and not isinstance(rule[key], bool):
                    problems.append(f"{var}.{key}: expected true or false")
            if "pattern" in rule and (error := _regex(rule["pattern"])):
                problems.append(f"{var}.pattern: {error}")
            length = rule.get("min_length", 0)
            if isinstance(length, bool) or not isinstance(length, int):
                problems.append(f"{var}.min_length: expected a whole number")
    return problems


def _env_names(value: object) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and ENV_NAME.fullmatch(v) for v in value):
        return f"expected a list of variable names, got {_kind(value)}"
    return None


def _string_or_list(value: object) -> str | None:
    if isinstance(value, str) and value:
        return None
    return _string_list(value)


def _bool_or_names(value: object) -> str | None:
    return None if isinstance(value, bool) else _env_names(value)


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {_kind(value)}"


def _table(value: object) -> str | None:
    return None if isinstance(value, dict) else f"expected a table of tables, got {_kind(value)}"


def _one_of(choices: tuple[str, ...]) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if value not in choices:
            return f"expected one of {', '.join(repr(c) for c in choices)}, got {_kind(value)}"
        return None

    return check


def _regex(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"expected a regular expression, got {_kind(value)}"
    try:
        re.compile(value)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


def _positive_int(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return f"expected a whole number of at least 1, got {_kind(value)}"
    return None


def _count(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"expected a whole number of at least 0, got {_kind(value)}"
    return None


def _string(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"expected a non-empty string, got {_kind(value)}"
    return None


def _string_list(value: object) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"expected a list of strings, got {_kind(value)}"
    return None


def _string_table(value: object) -> str | None:
    if not isinstance(value, dict):
        return f'expected a table of NAME = "value", got {_kind(value)}'
    for key, item in value.items():
        if not isinstance(item, str):
            return f"{key}: expected a string (quote the value), got {_kind(item)}"
    return None


def _url(value: object) -> str | None:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        return "expected an http:// or https:// URL"
    return None


def _positive_seconds(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return f"expected a positive number of seconds, got {_kind(value)}"
    return None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) < 40 else "a string"
    names = {int: "an integer", float: "a number", list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


_FIELDS: dict[str, Callable[[object], str | None]] = {
    "command": _string,
    "args": _string_list,
    "env": _string_table,
    "cwd": _string,
    "url": _url,
    "startup_timeout": _positive_seconds,
    "stop_timeout": _positive_seconds,
    "readiness": _one_of(C.READINESS_MODES),
    "ready_pattern": _regex,
    "ready_after": _positive_seconds,
    "restart": _one_of(C.RESTART_POLICIES),
    "backoff_base": _positive_seconds,
    "backoff_max": _positive_seconds,
    "max_failures": _positive_int,
    "reset_after": _positive_seconds,
    "cooldown_base": _positive_seconds,
    "cooldown_max": _positive_seconds,
    "health_interval": _positive_seconds,
    "health_timeout": _positive_seconds,
    "unhealthy_after": _positive_int,
    "restart_on_unhealthy": _boolean,
    "metrics_interval": _positive_seconds,
    "log_max_bytes": _positive_int,
    "log_backups": _count,
    "alerts": _table,
    "env_file": _string_or_list,
    "inherit_env": _bool_or_names,
    "required_env": _env_names,
    "env_rules": _table,
}
_SECONDS = [key for key, check in _FIELDS.items() if check is _positive_seconds]
FIELDS = frozenset(_FIELDS)  # the settings a [servers.NAME] table may hold
