"""The mcpctl config's text with tables added, replaced or removed in place (`client setup`'s servers,
`config import`'s document): new [servers.NAME] tables appended, changed ones replaced where they are,
so the rest of the file (comments included) stays as it was."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpctl.clients import tomlspan
from mcpctl.config import importer
from mcpctl.config.document import MERGE, NAMED, OWN, document, dumps
from mcpctl.config.load import parse
from mcpctl.config.model import config_error
from mcpctl.errors import ConfigError
from mcpctl.i18n import N_, _

# A new config's first line, in the user's language as `init`'s comments are.
_HEADER = N_("# mcpctl.toml: the MCP servers mcpctl runs (see the README, Configuration).")


def merged(path: Path, before: bytes | None, servers: Mapping[str, Any]) -> bytes:
    """The config file's bytes with `servers` in it, validated as every command validates it."""
    text = _merged_text(path, before.decode("utf-8") if before is not None else None, servers)
    _, problems = parse(text, path)
    if problems:
        raise config_error(problems)
    return text.encode("utf-8")


def imported(path: Path, content: bytes | None, before: Mapping[str, Any], after: Mapping[str, Any]) -> bytes:
    """`config import`'s new file: `content` with the tables that differ from `before` to `after` (both
    documents) rewritten in place, comments kept; the whole document when that cannot be done (a table
    written inline or with dotted keys) or would not read back as `after`."""
    if content is None:
        return dumps(after, "toml").encode("utf-8")
    whole = _ended_as(content.decode("utf-8"), dumps(after, "toml")).encode("utf-8")
    text = edited(content.decode("utf-8"), before, after)
    if text is None:
        return whole
    loaded, problems = parse(text, path)
    if problems or loaded is None or document(loaded) != document(importer.to_config(after, path)):
        return whole
    return text.encode("utf-8")


def edited(text: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """`text` with each table that differs between the documents replaced, added or removed (the named
    tables of MERGE one by one, the others whole); None when one of them is not a [table] block here."""
    for key, how in MERGE.items():
        if how == OWN:
            if before.get(key) != after.get(key):
                return None
            continue
        old, new = before.get(key), after.get(key)
        if how != NAMED:
            changed = _replaced(text, (key,), old is not None, new) if old != new else text
        else:
            old, new = old or {}, new or {}
            changed = text
            for name in [*old, *(name for name in new if name not in old)]:
                if changed is not None and old.get(name) != new.get(name):
                    changed = _replaced(changed, (key, name), name in old, new.get(name))
        if changed is None:
            return None
        text = changed
    return text


def _replaced(text: str, keys: tuple[str, ...], present: bool, table: Mapping[str, Any] | None) -> str | None:
    """The table at `keys` written as `table` (None: removed), or appended when it is not there yet."""
    span = tomlspan.table_span(text, keys) if present else None
    if present and span is None:
        return None  # written as an inline table or dotted keys: no span to replace
    rendered = _ended_as(text, tomlspan.render(keys, table)) if table is not None else ""
    if span is None:
        newline = _newline(text)
        return text + ("" if text.endswith("\n") or not text else newline) + newline + rendered
    start, end = span
    while table is None and text[end : end + 1] in ("\n", "\r"):
        end += 1  # a removed table takes its blank lines along
    return text[:start] + rendered + text[end:]


def _merged_text(path: Path, text: str | None, servers: Mapping[str, Any]) -> str:
    if text is None:
        return _(_HEADER) + "\n" + "".join("\n" + tomlspan.render(("servers", n), t) for n, t in servers.items())
    try:
        current = tomllib.loads(text).get("servers", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the syntax at the line named") from exc
    edited_text = edited(text, {"servers": current}, {"servers": {**current, **servers}})
    return edited_text if edited_text is not None else _whole(text, servers)


def _whole(text: str, servers: Mapping[str, Any]) -> str:
    """The file rewritten whole (comments lost), for a config whose tables are not [servers.NAME] blocks."""
    import tomli_w

    combined = importer.combine(tomllib.loads(text), {"servers": dict(servers)}, replace=False)
    return _ended_as(text, tomli_w.dumps(combined))


def _newline(text: str) -> str:
    """The file's own line ending: CRLF when it has one (an editor on Windows), else LF."""
    return "\r\n" if "\r\n" in text else "\n"


def _ended_as(text: str, written: str) -> str:
    """`written` (LF-ended, as tomli_w and tomlspan make it) with the line endings of `text`, so an edit of a
    CRLF file leaves no line of it ending otherwise."""
    return written.replace("\n", "\r\n") if _newline(text) == "\r\n" else written
