"""Read and validate mcpctl.toml (or an `mcpServers` JSON file) into a Config, with every problem at once.

A TOML file's parsed document is kept, beside the compiled methods of `mcpctl.lean` and as carefully
(`$XDG_CACHE_HOME/mcpctl/`, one file per config file, read only when the user's own): a command whose
config has the same text takes the document from there instead of importing `tomllib` and parsing
(~4-5 ms of every command), and validates it as always. The document holds what the config holds,
secrets too, so it is sealed with the text itself: kept XORed with a SHAKE-256 stream of the text, under
a SHA-256 of the text. Only whoever has that exact text can read it back; once the config changes or is
gone, what is left in the cache tells nothing.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from mcpctl import alerts, lean
from mcpctl import constants as C
from mcpctl.config import checks
from mcpctl.config import gateway as gateway_table
from mcpctl.config.checks import FIELDS, rules_problems
from mcpctl.config.interpolate import reference_problems
from mcpctl.config.model import (
    MORE,
    PROJECT_PATTERN,
    TOP_LEVEL,
    Config,
    InvalidConfig,
    Problem,
    ServerConfig,
    project_name,
)
from mcpctl.errors import ConfigError
from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.settings import SETTINGS, Kind
from mcpctl.states import Readiness

NAME_PATTERN = re.compile(C.SERVER_NAME_PATTERN)  # fullmatch: `$` would allow a trailing newline
# Keys that MCP clients put in their JSON files and that mean nothing to mcpctl beyond the transport.
# What the clients whose JSON files a config may be (Claude Desktop, Cursor, VS Code, Cline, Windsurf) keep
# in a server's entry for themselves: mcpctl has no use for it, and it is no typo of a setting. Their
# `disabled` is our `enabled` turned round.
_JSON_CLIENT_KEYS = frozenset({"type", "description", "autoApprove", "alwaysAllow", "disabledTools", "timeout"})
_JSON_RENAMED = {"envFile": "env_file"}
# How a problem reads (English: --json carries it); KNOWN lets the CLI show it translated. AT, which
# matches any "where: what", comes last, after the templates that say more.
UNREADABLE = N_("{path}: cannot read config: {reason}")
TOP_KEY, NOT_A_TABLE = N_("{path}: unknown top-level key {key!r}"), N_("{where}: expected a table of settings")
BAD_NAME = N_("{where}: invalid server name (use letters, digits, '.', '_' or '-')")
DUPLICATE = N_("{where}: duplicate of server {other!r} (names are case-insensitive)")
NO_COMMAND = N_("{where}: missing field 'command' (or 'url' for an HTTP server)")
UNKNOWN_FIELD = N_("{where}: unknown field {key!r}")
DID_YOU_MEAN = N_("{where}: unknown field {key!r} (did you mean {close!r}?)")
AT = N_("{where}: {error}")
KNOWN = (
    UNREADABLE,
    TOP_KEY,
    NOT_A_TABLE,
    BAD_NAME,
    DUPLICATE,
    NO_COMMAND,
    DID_YOU_MEAN,
    UNKNOWN_FIELD,
    MORE,
    *checks.KNOWN,
    AT,
)
_SECONDS = [setting.name for setting in SETTINGS if setting.kind == Kind.SECONDS]
# Lists in the file, tuples in ServerConfig.
_TUPLES = [s.name for s in SETTINGS if s.kind in (Kind.TEXTS, Kind.PATHS, Kind.ENV_NAMES, Kind.FLAG_OR_ENV_NAMES)]


def load(path: Path) -> Config:
    """Read and validate a config file; every problem is reported at once, with file, server and field."""
    config, problems = validate(path)
    if problems:
        raise InvalidConfig(path, problems)
    assert config is not None
    return config


def validate(path: Path) -> tuple[Config | None, list[Problem]]:
    """The config at `path` and every problem with it; the config is None when there is any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return None, [Problem(UNREADABLE.format(path=path, reason=reason), str(path))]
    return parse(text, path)


def parse(text: str, path: Path) -> tuple[Config | None, list[Problem]]:
    """Validate config text as if read from `path` (its suffix picks JSON or TOML)."""
    json_dialect = path.suffix.lower() == ".json"
    try:
        data = parse_json(path, text, translated=True) if json_dialect else _parse_toml(path, text)
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
        problems.append(Problem(TOP_KEY.format(path=path, key=key), file, hint="servers go in [servers.NAME] tables"))
    raw_servers = _top_table(data, "servers", "[servers.NAME]", path, problems)
    servers: dict[str, ServerConfig] = {}
    folded: dict[str, str] = {}
    for name, table in raw_servers.items():
        where = f"{path}: servers.{name}"
        if not NAME_PATTERN.fullmatch(name):
            problems.append(Problem(BAD_NAME.format(where=where), file, name))
            continue
        if name.lower() in folded:
            text = DUPLICATE.format(where=where, other=folded[name.lower()])
            problems.append(Problem(text, file, name))
            continue
        folded[name.lower()] = name
        found: list[str] = []
        server = _server(name, table, where, json_dialect, found)
        problems.extend(Problem(text, file, name, _field_of(text, where)) for text in found)
        if server is not None:
            servers[name] = server
    env_rules = _top_table(data, "env_rules", "[env_rules.VAR]", path, problems)
    problems.extend(Problem(f"{path}: env_rules.{p}", file, None, "env_rules") for p in rules_problems(env_rules))
    alert_tables = _top_table(data, "alerts", "[alerts.NAME]", path, problems)
    problems.extend(Problem(f"{path}: alerts.{p}", file, None, "alerts") for p in alerts.problems(alert_tables))
    project, home = _project_keys(data, path, problems)
    gateway = gateway_table.gateway(data.get("gateway"), path, problems)
    group_tables = _top_table(data, "groups", "[groups.NAME]", path, problems)
    groups, wrong_groups = gateway_table.groups(group_tables, servers, path)
    problems.extend(wrong_groups)
    if problems:
        return None, problems
    disabled = {name: server for name, server in servers.items() if not server.enabled}
    enabled = {name: server for name, server in servers.items() if server.enabled}
    return Config(path, enabled, env_rules, alert_tables, disabled, gateway, groups, project, home), []


_TOP_LEVEL = frozenset(TOP_LEVEL)


def _project_keys(data: Mapping[str, Any], path: Path, problems: list[Problem]) -> tuple[str | None, str | None]:
    """`project` (a name of [a-z0-9_-]) and `home` (a path), both optional."""
    project, home = data.get("project"), data.get("home")
    if project is not None and not (isinstance(project, str) and PROJECT_PATTERN.fullmatch(project)):
        text = (
            f"{path}: project: expected a name of a-z, 0-9, '_' and '-' (at most 64, starting with a letter or digit)"
        )
        problems.append(
            Problem(text, str(path), None, "project", f'for example project = "{project_name(str(project))}"')
        )
        project = None
    if home is not None and not (isinstance(home, str) and home.strip()):
        problems.append(
            Problem(f"{path}: home: expected a directory path (relative to the config file)", str(path), None, "home")
        )
        home = None
    return project, home


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


def project_of(path: Path) -> str:
    """The project of the config file at `path`: its `project` key, else its directory's name (a file
    that does not exist yet, or is broken, has its directory's)."""
    try:
        config, _ = validate(path) if path.is_file() else (None, [])
    except OSError:
        config = None
    return config.project if config is not None else Config(path.absolute(), {}).project


def _invalid_toml(path: Path, text: str, exc: ValueError) -> ConfigError:
    """tomllib names the line, except for what is still open where the file ends ("at end of document"):
    then the last line that holds anything is named, so the hint is true either way."""
    end = "(at end of document)"
    if not str(exc).endswith(end):
        return ConfigError(f"{path}: invalid TOML: {exc}", "fix the syntax at the line named")
    last = len(text.rstrip().splitlines()) or 1
    said = f"{str(exc)[: -len(end)]}(at the end of the file, after line {last})"
    hint = f"close what is still open at the end of the file (a bracket, brace or quote at line {last} or before)"
    return ConfigError(f"{path}: invalid TOML: {said}", hint)


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    kept = _kept_document(path)
    found = _unsealed(lean.read_private(kept), text.encode())
    if found is not None:
        return found
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _invalid_toml(path, text, exc) from exc
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply", "a config needs a few levels of tables") from None
    if kept is not None and not sys.dont_write_bytecode:
        sealed = _sealed(data, text.encode())
        if sealed is not None:  # None: it holds a date, and marshal has no dates
            lean.write_private(kept, sealed)
    return data


def _sealed(data: dict[str, Any], text: bytes) -> tuple[str, bytes] | None:
    """`data`, sealed with the text it was parsed from (see the module's docstring)."""
    try:
        plain = marshal.dumps(data)
    except ValueError:
        return None
    return _digest(text), _xor(plain, lean.shake_256(b"mcpctl document key\0" + text, len(plain)))


def _unsealed(found: object, text: bytes) -> dict[str, Any] | None:
    """The document kept for exactly `text`, if that is what `found` holds."""
    if not (isinstance(found, tuple) and len(found) == 2 and isinstance(found[1], bytes)):
        return None
    if found[0] != _digest(text):
        return None
    sealed = found[1]
    try:
        data = marshal.loads(_xor(sealed, lean.shake_256(b"mcpctl document key\0" + text, len(sealed))))
    except (ValueError, EOFError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def _digest(text: bytes) -> str:
    return lean.sha256_hex(b"mcpctl document\0" + text)


def _xor(data: bytes, stream: bytes) -> bytes:
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(len(data), "little")


_DOCUMENTS = lean.cache_dir("documents")


def _kept_document(path: Path) -> str | None:
    """Where the parsed document of the config file at `path` is kept, next to the text it came from."""
    if _DOCUMENTS is None:
        return None
    return os.path.join(_DOCUMENTS, lean.sha256_hex(os.path.abspath(path).encode()) + ".bin")


def parse_json(path: Path, text: str, translated: bool = False) -> dict[str, Any]:
    """An `mcpServers` (or VS Code `servers`) object, plus mcpctl's own top-level keys (env_rules, alerts,
    gateway, groups, project, home: what `config export` writes); the others belong to the client that
    wrote the file. `translated`: the servers' client variables (`${env:X}`, `${workspaceFolder}`, ...)
    read as `config import` writes them, so a client's file given with `-f` means what it means there."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ConfigError(f"{path}: duplicate key {key!r}", "each server name may appear once")
            seen[key] = value
        return seen

    from mcpctl.config import jsonc  # the clients' files may hold comments and trailing commas

    try:
        data = jsonc.loads(text, object_pairs_hook=no_duplicates)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}", "fix the syntax at the line named") from exc
    servers = data.get("mcpServers", data.get("servers")) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(
            f'{path}: no "mcpServers" object found',
            'a JSON config looks like {"mcpServers": {"NAME": {"command": ..., "args": [...]}}}',
        )
    assert isinstance(data, dict)
    if translated:
        from mcpctl.config import dialect

        found_inputs = dialect.inputs(data.get("inputs"), [])
        translate = dialect.Translator(dialect.workspace(path), found_inputs, dollar=dialect.dollar_names(path))
        servers = {name: translate.table(table) for name, table in servers.items()}
    return {"servers": servers, **{key: data[key] for key in TOP_LEVEL if key != "servers" and key in data}}


def _server(
    name: str,
    table: object,
    where: str,
    json_dialect: bool,
    problems: list[str],
) -> ServerConfig | None:
    if not isinstance(table, dict):
        problems.append(NOT_A_TABLE.format(where=where))
        return None
    before = len(problems)
    values = _checked_fields(table, where, json_dialect, problems)
    if not values.get("command") and not values.get("url") and len(problems) == before:
        problems.append(NO_COMMAND.format(where=where))
    if len(problems) == before:
        problems.extend(f"{where}.{problem}" for problem in _cross_checks(values))
    for key in _TUPLES:
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    if isinstance(values.get("env_file"), str):
        values["env_file"] = (values["env_file"],)
    if "tools" in values:
        values["tools"] = {key: tuple(globs) for key, globs in values["tools"].items()}
    for key in _SECONDS:
        if key in values:
            values[key] = float(values[key])
    server = ServerConfig(name=name, **values)  # made once: its references are checked on it
    problems.extend(f"{where}.{problem}" for problem in reference_problems(server))
    return server if len(problems) == before else None


def _checked_fields(table: dict[str, Any], where: str, json_dialect: bool, problems: list[str]) -> dict[str, Any]:
    """The fields that passed their check; every other one becomes a problem naming it."""
    values: dict[str, Any] = {}
    for key, value in (_client_entry(table) if json_dialect else table).items():
        check = FIELDS.get(key)
        if check is None:
            import difflib  # only for this problem

            close = difflib.get_close_matches(key, list(FIELDS), n=1)
            if close:
                problems.append(DID_YOU_MEAN.format(where=where, key=key, close=close[0]))
            else:
                problems.append(UNKNOWN_FIELD.format(where=where, key=key))
            continue
        found = checks.problems(check, value)
        problems += [f"{where}.{key}{under}: {error}" for under, error in found]
        if not found:
            values[key] = value
    return values


def _client_entry(table: dict[str, Any]) -> dict[str, Any]:
    """A client's JSON entry as settings: the client's own keys dropped, `disabled` as `enabled`, `envFile`
    as `env_file`; anything else is checked as a setting (a typo stays a problem)."""
    entry: dict[str, Any] = {}
    for key, value in table.items():
        if key == "disabled" and isinstance(value, bool) and "enabled" not in table:
            entry["enabled"] = not value
        elif key not in _JSON_CLIENT_KEYS:
            entry[_JSON_RENAMED.get(key, key)] = value
    return entry


def _cross_checks(values: dict[str, Any]) -> list[str]:
    readiness = values.get("readiness", Readiness.MCP)
    problems = []
    if readiness == Readiness.LOG and not values.get("ready_pattern"):
        problems.append('ready_pattern: required with readiness = "log" (a regex matched on output lines)')
    if readiness != Readiness.LOG and "ready_pattern" in values:
        problems.append('ready_pattern: only used with readiness = "log"')
    if readiness != Readiness.MCP and values.get("url"):
        problems.append('readiness: an HTTP server (url) is judged by the MCP handshake; use readiness = "mcp"')
    if values.get("share") == C.SHARE_PER_CLIENT and (values.get("url") or readiness != Readiness.MCP):
        problems.append('share: "per-client" needs a stdio server (command, no url) with readiness = "mcp"')
    if values.get("backoff_base", 0) > values.get("backoff_max", C.DEFAULT_BACKOFF_MAX):
        problems.append("backoff_base: larger than backoff_max")
    problems.extend(f"env_rules.{p}" for p in rules_problems(values.get("env_rules", {})))
    problems.extend(f"alerts.{p}" for p in alerts.problems(values.get("alerts", {})))
    return problems
