"""JSON with comments and trailing commas (JSONC, what VS Code and Cursor write), read without losing where
each value is, so an editor can replace one value's span and leave every other byte as it was.

`clean` blanks comments and trailing commas with spaces (newlines kept), so offsets in the cleaned text
are offsets in the original; the strict json module then reads it, and `value_span` finds a value by its
path of keys.
"""

from __future__ import annotations

import json
import re

from mcpctl.hints import Any

_SCALAR = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null")
_SPACE = " \t\r\n"


def clean(text: str) -> str:
    """`text` with comments and trailing commas replaced by spaces, every offset and newline unchanged."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out[i:end] = [ch if ch == "\n" else " " for ch in text[i:end]]
            i = end
            continue
        i += 1
    return _drop_trailing_commas("".join(out))


def loads(text: str, **options: Any) -> Any:
    """The JSONC text's value (json.JSONDecodeError, as the json module raises it, when it is not JSONC)."""
    return json.loads(clean(text), **options)


def value_span(text: str, keys: tuple[str, ...]) -> tuple[int, int] | None:
    """Where the value at `keys` (object keys from the top) starts and ends in `text`; None if absent."""
    cleaned = clean(text)
    start = _skip(cleaned, 0)
    for key in keys:
        found = _member(cleaned, start, key)
        if found is None:
            return None
        start = found
    return start, _value_end(cleaned, start)


def line_indent(text: str, offset: int) -> str:
    """The whitespace that starts the line holding `offset`."""
    line_start = text.rfind("\n", 0, offset) + 1
    return re.match(r"[ \t]*", text[line_start:]).group(0)  # type: ignore[union-attr]


def _string_end(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return len(text)


def _drop_trailing_commas(text: str) -> str:
    out = list(text)
    i = 0
    while i < len(text):
        if text[i] == '"':
            i = _string_end(text, i)
            continue
        if text[i] == ",":
            after = _skip(text, i + 1)
            if after < len(text) and text[after] in "}]":
                out[i] = " "
        i += 1
    return "".join(out)


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def _member(text: str, start: int, key: str) -> int | None:
    """The start of the value of `key` in the object at `start`, None if it has no such key."""
    if text[start : start + 1] != "{":
        return None
    i = _skip(text, start + 1)
    while i < len(text) and text[i] == '"':
        name_end = _string_end(text, i)
        name = json.loads(text[i:name_end])
        value = _skip(text, _skip(text, name_end) + 1)  # past the colon
        if name == key:
            return value
        i = _skip(text, _value_end(text, value))
        if text[i : i + 1] != ",":
            return None
        i = _skip(text, i + 1)
    return None


def _value_end(text: str, start: int) -> int:
    c = text[start : start + 1]
    if c == '"':
        return _string_end(text, start)
    if c in "{[":
        depth, i = 0, start
        while i < len(text):
            if text[i] == '"':
                i = _string_end(text, i)
                continue
            if text[i] in "{[":
                depth += 1
            elif text[i] in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return len(text)
    match = _SCALAR.match(text, start)
    return match.end() if match else start
