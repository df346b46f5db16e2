"""The aggregate's names: every member's tools (prompts, resources) under one name each.

A name stays as the server gave it unless two members offer it, or it is not a valid name; then it is
`server__name`, and when that is too long or still taken, cut and given a stable short hash.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

VALID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
SEPARATOR = "__"


def allowed(name: str, rules: Mapping[str, tuple[str, ...]]) -> bool:
    """A tool passes `[servers.NAME] tools.allow/deny`: it matches an allow glob (when any) and no deny glob."""
    allow, deny = rules.get("allow", ()), rules.get("deny", ())
    if allow and not any(fnmatch.fnmatchcase(name, glob) for glob in allow):
        return False
    return not any(fnmatch.fnmatchcase(name, glob) for glob in deny)


def _hashed(text: str, seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()[:8]
    return f"{text[: 64 - len(digest) - 1]}_{digest}"


def exposed_names(entries: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """{exposed name: (server, original name)} for (server, name) pairs in a stable order."""
    counts = Counter(name for _server, name in entries)
    result: dict[str, tuple[str, str]] = {}
    for server, name in entries:
        candidate = name if counts[name] == 1 and VALID.fullmatch(name) else f"{server}{SEPARATOR}{name}"
        candidate = _INVALID_CHARS.sub("_", candidate)
        if len(candidate) > 64 or candidate in result:
            candidate = _hashed(candidate, f"{server}\0{name}")
        result[candidate] = (server, name)
    return result


def merge(key: str, pages: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    """Items of every member (in member order), renamed; and {exposed: (server, original)}."""
    entries = [(server, str(item.get(key))) for server, items in pages.items() for item in items]
    names = exposed_names(entries)
    by_origin = {origin: exposed for exposed, origin in names.items()}
    merged = []
    for server, items in pages.items():
        for item in items:
            exposed = by_origin[(server, str(item.get(key)))]
            merged.append({**item, key: exposed})
    return merged, names
