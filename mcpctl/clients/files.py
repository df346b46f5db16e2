"""A client's config file read into its server entries, and the same file with some entries rewritten.

An edit replaces only the text of the entries it rewrites (the value span in JSON/JSONC, the table in
TOML), so comments, key order and formatting elsewhere stay byte for byte.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpctl.clients import tomlspan
from mcpctl.clients.registry import Location
from mcpctl.config import dialect, jsonc
from mcpctl.config.model import UntrustedFile
from mcpctl.config.trust import check_client_file
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass

# Why a file could not be read (English: --json carries it); KNOWN lets the CLI show it translated.
CANNOT_READ, CANNOT_PARSE = N_("{path}: cannot read: {reason}"), N_("{path}: cannot parse: {reason}")
KNOWN = (CANNOT_READ, CANNOT_PARSE)


@dataclass(frozen=True)
class Entry(Record):
    """One server entry of a client's file: `keys` lead to it from the top of the file."""

    location: Location
    keys: tuple[str, ...]
    table: Mapping[str, Any]
    inputs: object = None  # VS Code's top-level "inputs" (prompted values), which ${input:ID} names

    @property
    def name(self) -> str:
        return self.keys[-1]

    @property
    def scope(self) -> str:
        """ "user", "project", or "project PATH" for Claude Code's per-project entries in ~/.claude.json."""
        return f"project {self.keys[1]}" if self.keys[0] == "projects" else self.location.scope

    @property
    def base(self) -> Path:
        """The workspace the entry's relative paths and ${workspaceFolder} mean."""
        if self.keys[0] == "projects":
            return Path(self.keys[1])
        return dialect.workspace(self.location.path)


@dataclass(frozen=True)
class ClientFile(Record):
    """One client config file as read: its bytes and the server entries in it, or why it could not be read."""

    location: Location
    content: bytes | None  # None: there is no such file, or it was refused
    entries: tuple[Entry, ...] = ()
    problem: str | None = None  # why it could not be read
    refused: UntrustedFile | None = None  # why the trust rules refused it (then it was not read)

    @property
    def path(self) -> Path:
        return self.location.path

    @property
    def exists(self) -> bool:
        return self.content is not None or self.refused is not None


def read(location: Location, trust: bool) -> ClientFile:
    """The file and its entries; a missing file has none, an unreadable one says why in `problem`. A
    file the trust rules refuse (config/trust.py: its commands would become the user's) is not read,
    unless `trust`."""
    try:
        if not trust and os.path.lexists(location.path):
            check_client_file(location.path)
        content = _regular_bytes(location.path)
    except UntrustedFile as exc:
        return ClientFile(location, None, problem=exc.message, refused=exc)
    except FileNotFoundError:
        return ClientFile(location, None)
    except OSError as exc:
        return ClientFile(location, None, problem=CANNOT_READ.format(path=location.path, reason=exc.strerror))
    try:
        data = _parse(location, content.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        return ClientFile(location, content, problem=CANNOT_PARSE.format(path=location.path, reason=exc))
    return ClientFile(location, content, tuple(_entries(location, data)))


def _regular_bytes(path: Path) -> bytes:
    """A regular file's bytes; a device or a pipe (read for ever, even under --trust) is an OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # a FIFO's open must not wait for a writer
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return handle.read()


def edited(file: ClientFile, tables: Mapping[tuple[str, ...], Mapping[str, Any]]) -> bytes:
    """The file's bytes with the entries at these keys replaced by these tables."""
    assert file.content is not None
    text = file.content.decode("utf-8")
    newline = "\r\n" if "\r\n" in text else "\n"  # the file's own line ending, in the rewritten entries too
    spans = [(_span(file.location, text, keys), keys) for keys in tables]
    for (start, end), keys in sorted(spans, reverse=True):
        rendered = _rendered(file.location, text, start, keys, tables[keys]).replace("\n", newline)
        text = text[:start] + rendered + text[end:]
    return text.encode("utf-8")


def _parse(location: Location, text: str) -> Any:
    if location.fmt == "toml":
        import tomllib

        return tomllib.loads(text)
    return jsonc.loads(text)


def _entries(location: Location, data: Any) -> list[Entry]:
    containers = [location.container]
    if location.per_project and isinstance(data, dict) and isinstance(data.get("projects"), dict):
        containers += [("projects", project, "mcpServers") for project in data["projects"]]
    found = []
    for container in containers:
        servers = _at(data, container)
        for name, table in servers.items() if isinstance(servers, dict) else ():
            if isinstance(table, dict):
                inputs = data.get("inputs") if isinstance(data, dict) else None
                found.append(Entry(location, (*container, name), table, inputs))
    return found


def _at(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _span(location: Location, text: str, keys: tuple[str, ...]) -> tuple[int, int]:
    span = tomlspan.table_span(text, keys) if location.fmt == "toml" else jsonc.value_span(text, keys)
    if span is None:  # read a moment ago, so only a TOML entry written as an inline table gets here
        raise ValueError(f"{location.path}: cannot find the text of {'.'.join(keys)}")
    return span


def _rendered(location: Location, text: str, start: int, keys: tuple[str, ...], table: Mapping[str, Any]) -> str:
    if location.fmt == "toml":
        return tomlspan.render(keys, table)
    unit = _indent_unit(text)
    here = jsonc.line_indent(text, start)
    lines = json.dumps(table, indent=unit, ensure_ascii=False).split("\n")
    return "\n".join([lines[0], *(here + line for line in lines[1:])])


def _indent_unit(text: str) -> str | int:
    """The file's indentation step: a tab, or the smallest number of leading spaces (2 when flat)."""
    indents = [m.group(1) for m in re.finditer(r"\n([ \t]+)\S", text)]
    if any(indent.startswith("\t") for indent in indents):
        return "\t"
    return min((len(indent) for indent in indents), default=2)
