"""The mcpctl config with a client's servers added: new [servers.NAME] tables appended, changed ones
replaced in place, so the rest of the file (comments included) stays as it was."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpctl.clients import tomlspan
from mcpctl.config import importer
from mcpctl.config.load import parse
from mcpctl.config.model import config_error
from mcpctl.errors import ConfigError

_HEADER = "# mcpctl.toml: the MCP servers mcpctl runs (see the README, Configuration).\n"


def merged(path: Path, before: bytes | None, servers: Mapping[str, Any]) -> bytes:
    """The config file's bytes with `servers` in it, validated as every command validates it."""
    text = _merged_text(path, before.decode("utf-8") if before is not None else None, servers)
    _, problems = parse(text, path)
    if problems:
        raise config_error(problems)
    return text.encode("utf-8")


def _merged_text(path: Path, text: str | None, servers: Mapping[str, Any]) -> str:
    if text is None:
        return _HEADER + "".join("\n" + tomlspan.render(("servers", n), t) for n, t in servers.items())
    try:
        current = tomllib.loads(text).get("servers", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the syntax at the line named") from exc
    for name, table in servers.items():
        if current.get(name) == table:
            continue
        rendered = tomlspan.render(("servers", name), table)
        span = tomlspan.table_span(text, ("servers", name)) if name in current else None
        if name in current and span is None:
            return _whole(text, servers)  # written as an inline table: no span to replace
        if span is None:
            text = text + ("" if text.endswith("\n") or not text else "\n") + "\n" + rendered
        else:
            text = text[: span[0]] + rendered + text[span[1] :]
    return text


def _whole(text: str, servers: Mapping[str, Any]) -> str:
    """The file rewritten whole (comments lost), for a config whose tables are not [servers.NAME] blocks."""
    import tomli_w

    return tomli_w.dumps(importer.combine(tomllib.loads(text), {"servers": dict(servers)}, replace=False))
