"""Bounded JSON-lines journals (events, metrics): one object per line, one older generation kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcpctl.errors import StateDirError
from mcpctl.hints import Any
from mcpctl.privdir import open_own, read_own


def append(path: Path, entry: dict[str, Any], max_bytes: int) -> bool:
    """Append one entry; past `max_bytes` the file first moves to PATH.1. A failed write (a full disk)
    never stops supervision: the entry is lost, nothing else, and False says so."""
    line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
    try:
        if path.exists() and path.stat().st_size + len(line) > max_bytes:
            os.replace(path, path.with_name(path.name + ".1"))
        fd = open_own(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            written = os.write(fd, line)
        finally:
            os.close(fd)
    except (OSError, StateDirError):  # a symlink or someone else's file there is never written through
        return False
    return written == len(line)


def read(path: Path) -> list[dict[str, Any]]:
    """Every readable entry, oldest first (a damaged line is skipped, not fatal)."""
    entries = []
    for candidate in (path.with_name(path.name + ".1"), path):
        try:
            lines = read_own(candidate).splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(entry, dict):
                entries.append(entry)
    return entries
