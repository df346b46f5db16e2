"""Reading MCP client config files into mcpctl's document, and combining them with the current config.

Read: mcpctl TOML, and JSON or JSONC (comments, trailing commas) with an `mcpServers` object (Claude
Desktop's claude_desktop_config.json, Cursor's .cursor/mcp.json, the seed's mcp_servers.json, mcpctl's
own export) or a `servers` object (VS Code's .vscode/mcp.json). `client setup` hands over the entries it
found in any client's file (Codex TOML included) to `from_entries`, the same translation.
Client syntax is translated: `${env:NAME}` becomes `${NAME}`, VS Code's `${input:ID}` becomes `${ID}` (an
environment variable, since nobody is there to prompt), `${userHome}` becomes `${HOME}`,
`${workspaceFolder}` the workspace's path, `envFile` `env_file`, Gemini's `httpUrl` and Windsurf's
`serverUrl` `url`, Codex's `bearer_token_env_var` an Authorization header; `headers` are kept; an
SSE-only server (mcpctl speaks streamable HTTP) is imported with `enabled = false`; settings mcpctl has
no use for (autoApprove, ...) are left out with a note, and disabled servers are skipped. Every other
`$` is the client's literal text, written `$$` (dialect.Translator). Relative paths keep pointing where
they pointed: they are rebased onto the folder of the file written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mcpctl.config import dialect, jsonc
from mcpctl.config import gateway as gateway_table
from mcpctl.config.document import MERGE, OWN, WHOLE, document
from mcpctl.config.interpolate import EXPANDED
from mcpctl.config.load import from_document, parse_json, validate
from mcpctl.config.model import Config, config_error
from mcpctl.errors import ConfigError, UsageError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.settings import BY_NAME

_RENAMED = {"envFile": "env_file", "httpUrl": "url", "serverUrl": "url", "startup_timeout_sec": "startup_timeout"}
_CLIENT_ONLY = frozenset({"type", "description", "disabled", "enabled"})
_PATH_FIELDS = ("cwd", "env_file")
NO_FILE = N_("{source}: no such file")
KNOWN = (NO_FILE,)  # lets the CLI show the usage error translated
# What an import leaves out (English: --json carries them); NOTES lets the CLI show them translated.
DISABLED = N_("{name}: disabled in the source file, not imported")
LEFT_OUT = N_("{name}: {key} left out (mcpctl does not use it)")
SSE_ONLY = N_("{name}: an SSE-only server; mcpctl speaks streamable HTTP, so it is imported with enabled = false")
NOTES = (DISABLED, LEFT_OUT, SSE_ONLY, *dialect.NOTES)


@dataclass(frozen=True)
class Imported(Record):
    """A client's config read as mcpctl servers, with notes on what was left out."""

    source: Path
    document: dict[str, Any]
    notes: tuple[str, ...] = ()


def read(source: Path, target_dir: Path) -> Imported:
    """The servers of `source` as an mcpctl document for a config in `target_dir`, validated.

    `config import` and `init --from` both read with it; problems name `source` as it was given.
    """
    if not source.is_file():
        raise UsageError(NO_FILE.format(source=source), N_("give the path of a TOML or JSON config to import"))
    if source.suffix.lower() != ".json":
        loaded, problems = validate(source)
        if problems:
            raise config_error(problems)
        assert loaded is not None
        return Imported(source, rebase(document(loaded), loaded.base_dir, target_dir))
    text = source.read_text(encoding="utf-8", errors="replace")
    try:
        strict = jsonc.clean(text)
    except RecursionError as exc:
        raise ConfigError(f"{source}: invalid JSON: nested too deeply", "fix the file") from exc
    data = parse_json(source, strict)  # ConfigError (exit 2) for bad JSON or no servers
    raw = json.loads(strict)
    base = dialect.workspace(source)
    shared: dict[str, Any] = {key: value for key, value in data.items() if key != "servers"}  # mcpctl's own keys
    dollar = dialect.dollar_names(source)
    return from_entries(source, data["servers"], base, target_dir, raw.get("inputs"), shared, dollar=dollar)


def from_entries(
    source: Path,
    entries: Mapping[str, Any],
    base: Path,
    target_dir: Path,
    inputs: object = None,
    shared: Mapping[str, Any] | None = None,
    url_is_sse: bool = False,
    bare: bool = True,
    dollar: bool = False,
) -> Imported:
    """Client entries (NAME -> table) as a validated mcpctl document; `base` is the client's workspace.

    `url_is_sse`: the client's `url` key names an SSE endpoint (Gemini CLI; its `httpUrl` is streamable).
    `bare`: a bare `${NAME}` is an environment variable (dialect.Translator), else literal text; `dollar`:
    so is `$NAME` (Gemini CLI).
    """
    notes: list[str] = []
    translate = dialect.Translator(base, dialect.inputs(inputs, notes), bare, dollar)
    servers: dict[str, object] = {}
    for name, table in entries.items():
        converted = _server(name, table, translate, notes, url_is_sse)
        if converted is not None:
            servers[name] = converted
    doc = rebase({"servers": servers, **(shared or {})}, base, target_dir)
    _, problems = from_document(doc, source)
    if problems:
        raise config_error(problems)
    notes += translate.notes
    return Imported(source, doc, tuple(dict.fromkeys(notes)))


def is_sse(table: Mapping[str, Any], url_is_sse: bool = False) -> bool:
    """An SSE-only server: mcpctl speaks streamable HTTP, not the older SSE transport."""
    if table.get("type") == "sse":
        return True
    url = table.get("url", table.get("serverUrl"))  # Windsurf's serverUrl, before it is renamed url
    if not isinstance(url, str) or table.get("type") in ("http", "streamable-http", "streamableHttp"):
        return False
    return url_is_sse or url.rstrip("/").endswith("/sse")


def combine(current: Mapping[str, Any] | None, imported: Mapping[str, Any], replace: bool) -> dict[str, Any]:
    """The document after the import into `current` (None: there is no file yet), each top-level key as
    document.MERGE says: the imported servers and tables over the current ones (`replace`: the imported
    servers in place of the current ones), the rest of the current config kept."""
    if current is None:
        return dict(imported)
    result: dict[str, Any] = {}
    for key, how in MERGE.items():
        mine, theirs = current.get(key), imported.get(key)
        if how == OWN or theirs is None:
            value = mine
        elif how == WHOLE or (replace and key == "servers"):
            value = theirs
        else:
            value = {**(mine if isinstance(mine, Mapping) else {}), **theirs}
        if value is not None and (value != {} or how == WHOLE):  # an empty [gateway] is a gateway
            result[key] = value
    result.setdefault("servers", {})
    return result


def rebase(doc: Mapping[str, Any], source_dir: Path, target_dir: Path) -> dict[str, Any]:
    """Relative paths (each server's cwd and env_file, `home`, the gateway's tls_cert and tls_key) made
    absolute when the document moves to another folder."""
    if os.path.normpath(source_dir.absolute()) == os.path.normpath(target_dir.absolute()):
        return dict(doc)

    def moved(value: str) -> str:
        if "$" in value or value.startswith("~") or os.path.isabs(value):
            return value
        return os.path.normpath(source_dir.absolute() / value)

    servers = {}
    for name, original in doc.get("servers", {}).items():
        table = dict(original)
        if isinstance(table.get("cwd"), str):
            table["cwd"] = moved(table["cwd"])
        if isinstance(table.get("env_file"), list | str):
            files = [table["env_file"]] if isinstance(table["env_file"], str) else table["env_file"]
            table["env_file"] = [moved(f) if isinstance(f, str) else f for f in files]
        servers[name] = table
    result = {**doc, "servers": servers}
    if isinstance(doc.get("home"), str):
        result["home"] = moved(doc["home"])
    if isinstance(doc.get("gateway"), Mapping):
        gateway = result["gateway"] = dict(doc["gateway"])
        for key in gateway_table.PATHS:
            if isinstance(gateway.get(key), str):
                gateway[key] = moved(gateway[key])
    return result


def to_config(doc: Mapping[str, Any], path: Path) -> Config:
    """The document as the config it would be at `path` (validated by the one validator)."""
    loaded, problems = from_document(doc, path)
    if problems:
        raise config_error(problems)
    assert loaded is not None
    return loaded


def _server(name: str, table: object, translate: dialect.Translator, notes: list[str], url_is_sse: bool) -> object:
    if not isinstance(table, dict):
        return table  # the validator names the problem
    if table.get("disabled") is True or table.get("enabled") is False:
        notes.append(DISABLED.format(name=name))
        return None
    result: dict[str, Any] = {}
    for key, value in table.items():
        field = _RENAMED.get(key) or key
        if field in BY_NAME and field != "enabled":
            result[field] = translate(value, field in EXPANDED)
        elif key in _HEADER_KEYS:
            result["headers"] = {**result.get("headers", {}), **_HEADER_KEYS[key](value)}
        elif key not in _CLIENT_ONLY:
            notes.append(LEFT_OUT.format(name=name, key=repr(key)))
    if is_sse(table, url_is_sse and "httpUrl" not in table):
        result["enabled"] = False
        notes.append(SSE_ONLY.format(name=name))
    return result


def _codex_env_headers(value: object) -> dict[str, str]:
    return {str(k): f"${{{v}}}" for k, v in value.items()} if isinstance(value, dict) else {}


# Codex CLI's ways to give HTTP headers, as mcpctl `headers` (values as ${VAR} references where Codex names one;
# its literal values have no variables, so a `$` in them is written `$$`).
def _codex_headers(value: object) -> dict[str, str]:
    return {str(k): str(v).replace("$", "$$") for k, v in value.items()} if isinstance(value, dict) else {}


def _codex_bearer(value: object) -> dict[str, str]:
    return {"Authorization": f"Bearer ${{{value}}}"}


_HEADER_KEYS: dict[str, Callable[[object], dict[str, str]]] = {
    "http_headers": _codex_headers,
    "env_http_headers": _codex_env_headers,
    "bearer_token_env_var": _codex_bearer,
}
