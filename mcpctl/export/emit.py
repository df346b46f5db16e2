"""A small YAML writer for the manifests: block style, every string double-quoted (JSON's quoting is
YAML's), so no value is ever read back as a number, a boolean or a null it was not."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_KEYWORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def document(data: object, comments: Iterable[str] = ()) -> str:
    """One YAML document (`---` first), with `comments` as `#` lines above it."""
    head = "".join(f"# {line}\n" if line else "#\n" for line in comments)
    return "---\n" + head + "".join(_lines(data, 0))


def _lines(data: object, indent: int) -> Iterable[str]:
    pad = "  " * indent
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _entry(f"{pad}{_key(str(key))}:", value, indent)
    elif isinstance(data, list):
        for item in data:
            yield from _entry(f"{pad}-", item, indent)
    else:
        yield f"{pad}{_scalar(data)}\n"


def _entry(lead: str, value: object, indent: int) -> Iterable[str]:
    if isinstance(value, dict | list) and value:
        if lead.endswith("-") and isinstance(value, dict):
            # a mapping in a list: its first key on the dash's line, the rest aligned under it
            first, *rest = _lines(value, indent + 1)
            yield f"{lead} {first.lstrip()}"
            yield from rest
        else:
            yield f"{lead}\n"
            yield from _lines(value, indent + 1)
    else:
        yield f"{lead} {_scalar(value)}\n"


def _key(key: str) -> str:
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", key) and key.lower() not in _KEYWORDS
    return key if plain else json.dumps(key)


def _scalar(value: object) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(str(value))
