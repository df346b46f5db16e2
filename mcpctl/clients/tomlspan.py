"""Rewriting one `[mcp_servers.NAME]` table of a TOML file in place: every other byte is kept (tomllib reads,
but no TOML writer keeps comments, so the table's lines are found and replaced as text)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_HEADER = re.compile(r"^[ \t]*\[(?!\[)(?P<key>[^\]#]+)\][ \t]*(#.*)?$")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def table_span(text: str, keys: tuple[str, ...]) -> tuple[int, int] | None:
    """Where the table `keys` (with its sub-tables) starts and ends; the comments and blank lines just
    before the next table belong to that one. None if it is not written as a [table] header."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    start = end = None
    for number, line in enumerate(lines):
        header = _header_keys(line)
        if header is None:
            continue
        inside = header[: len(keys)] == keys
        if start is None and header == keys:
            start = number
        elif start is not None and not inside:
            end = number
            break
    if start is None:
        return None
    end = len(lines) if end is None else end
    while end - 1 > start and _is_filler(lines[end - 1]):
        end -= 1
    return offsets[start], offsets[end]


def render(keys: tuple[str, ...], table: Mapping[str, Any]) -> str:
    """The table as TOML text: a header, then its keys; nested tables as sub-tables."""
    import tomli_w

    body = tomli_w.dumps(dict(table))
    header = "[" + ".".join(_quoted(key) for key in keys) + "]\n"
    # tomli_w names sub-tables from the top ([env]); under this table they are [mcp_servers.NAME.env].
    prefix = ".".join(_quoted(key) for key in keys)
    body = re.sub(r"^\[(?!\[)", f"[{prefix}.", body, flags=re.MULTILINE)
    return header + body


def _header_keys(line: str) -> tuple[str, ...] | None:
    match = _HEADER.match(line.rstrip("\r\n"))
    if match is None:
        return None
    return tuple(_split_dotted(match.group("key").strip()))


def _split_dotted(key: str) -> list[str]:
    parts: list[str] = []
    i = 0
    while i < len(key):
        if key[i] in "\"'":
            quote = key[i]
            close = key.index(quote, i + 1) if quote in key[i + 1 :] else len(key)
            parts.append(key[i + 1 : close])
            i = close + 1
        else:
            match = _BARE.match(key, i)
            if match is None:
                i += 1
                continue
            parts.append(match.group(0))
            i = match.end()
        while i < len(key) and key[i] in " \t.":
            i += 1
    return parts


def _is_filler(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _quoted(key: str) -> str:
    return key if _BARE.fullmatch(key) else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
