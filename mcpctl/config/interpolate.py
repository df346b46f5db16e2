"""`${VAR}`, `${VAR:-default}` (defaults may nest) and `$$` for a literal `$`, in config values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from mcpctl.i18n import N_

NOT_SET = N_("${{{name}}} is not set and has no default (write ${{{name}:-default}})")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(ValueError):
    """A reference that cannot be resolved, or a malformed one."""


def interpolate(text: str, lookup: Mapping[str, str], used: Callable[[str], None] | None = None) -> str:
    """Expand references in `text` from `lookup`; an unset variable without a default is an error.

    `used` is told every variable name that was looked up (set or not), for reporting sources.
    """
    value, end = _expand(text, 0, lookup, used, closing=False)
    assert end == len(text)
    return value


def _expand(
    text: str, pos: int, lookup: Mapping[str, str], used: Callable[[str], None] | None, closing: bool
) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if closing and char == "}":
            return "".join(out), pos
        if char != "$":
            out.append(char)
            pos += 1
            continue
        following = text[pos + 1 : pos + 2]
        if following == "$":
            out.append("$")
            pos += 2
        elif following == "{":
            value, pos = _reference(text, pos + 2, lookup, used)
            out.append(value)
        else:
            out.append("$")  # a lone $ (as in "cost: $5") stays as it is
            pos += 1
    if closing:
        raise InterpolationError(f"unclosed '${{' in {text!r}")
    return "".join(out), pos


def _reference(text: str, pos: int, lookup: Mapping[str, str], used: Callable[[str], None] | None) -> tuple[str, int]:
    """Parse NAME or NAME:-default after '${'; return the value and the position after '}'."""
    match = _NAME.match(text, pos)
    if not match:
        raise InterpolationError(f"expected a variable name after '${{' in {text!r}")
    name, pos = match.group(), match.end()
    if used:
        used(name)
    if text.startswith(":-", pos):
        default, pos = _expand(text, pos + 2, lookup, used, closing=True)
        return (lookup.get(name) or default), pos + 1
    if text[pos : pos + 1] != "}":
        raise InterpolationError(f"expected '}}' or ':-' after ${{{name} in {text!r}")
    if name not in lookup:
        raise InterpolationError(NOT_SET.format(name=name))
    return lookup[name], pos + 1
