"""`${VAR}`, `${VAR:-default}` (defaults may nest) and `$$` for a literal `$`, in config values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from mcpctl.hints import TYPE_CHECKING
from mcpctl.i18n import N_

if TYPE_CHECKING:
    from mcpctl.config.model import ServerConfig

NOT_SET = N_("${{{name}}} is not set and has no default (write ${{{name}:-default}})")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Another client's variables (VS Code, Cursor): `config import` translates them, mcpctl does not read them.
_CLIENT_VARIABLE = re.compile(r"(env|input):(?!-)([^}]*)\}")


class InterpolationError(ValueError):
    """A reference that cannot be resolved (`unset`: the variable that is not set), or a malformed one."""

    def __init__(self, message: str, unset: str | None = None) -> None:
        super().__init__(message)
        self.unset = unset


def interpolate(text: str, lookup: Mapping[str, str], used: Callable[[str], None] | None = None) -> str:
    """Expand references in `text` from `lookup`; an unset variable without a default is an error.

    `used` is told every variable name that was looked up (set or not), for reporting sources.
    """
    value, end = _expand(text, 0, lookup, used, closing=False)
    assert end == len(text)
    return value


def malformed(text: str) -> str | None:
    """What is wrong with how the references in `text` are written, None if nothing is.

    Syntax is the config's: the config is refused for it when it is read, whatever the environment holds,
    while an unset variable is the environment's, said when a server is about to start. Messages name
    positions and variable names, never the text, which may be a secret.
    """
    try:
        interpolate(text, _EVERY_VARIABLE)
    except InterpolationError as exc:
        return str(exc)
    return None


# The settings whose `${VAR}` references are expanded (env, and those expand_settings names); in the others
# (command, env_file, ...) a `$` is only a `$`.
EXPANDED = frozenset({"env", "args", "cwd", "url", "headers"})


def expand_settings(
    server: ServerConfig, expand: Callable[[str, str], str]
) -> tuple[list[str], str | None, str | None, dict[str, str]]:
    """args, cwd, url and headers, each value as `expand(text, where)` makes it: the one list of the settings,
    besides `env`, whose `${VAR}` references are expanded at run time (export's needs reads it too)."""
    args = [expand(arg, f"args[{index}]") for index, arg in enumerate(server.args)]
    cwd = expand(server.cwd, "cwd") if server.cwd else None
    url = expand(server.url, "url") if server.url else None
    headers = {name: expand(value, f"headers.{name}") for name, value in server.headers.items()}
    return args, cwd, url, headers


def reference_problems(server: ServerConfig) -> list[str]:
    """`FIELD: what is wrong` for each value, in every setting that has references, whose references are
    written wrong: config.load refuses the config for these, before any environment is looked at."""
    problems: list[str] = []

    def check(text: str, where: str) -> str:
        if error := malformed(text):
            problems.append(f"{where}: {error}")
        return text

    for name, value in server.env.items():
        check(value, f"env.{name}")
    expand_settings(server, check)
    return problems


class _EveryVariable(dict[str, str]):
    """A lookup in which every variable is set (to ""), to read a text's references without an environment."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return ""


_EVERY_VARIABLE = _EveryVariable()


def env_name(identifier: str) -> str:
    """The environment variable that stands for a client's prompted input (VS Code's `${input:ID}`)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", identifier).upper()
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def _expand(
    text: str, pos: int, lookup: Mapping[str, str], used: Callable[[str], None] | None, closing: bool
) -> tuple[str, int]:
    """The text from `pos` expanded, up to its end or (`closing`) the first `}` outside a reference."""
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
            value, pos = _reference(text, pos, lookup, used)
            out.append(value)
        else:
            out.append("$")  # a lone $ (as in "cost: $5") stays as it is
            pos += 1
    return "".join(out), pos


def _reference(text: str, start: int, lookup: Mapping[str, str], used: Callable[[str], None] | None) -> tuple[str, int]:
    """Parse NAME or NAME:-default after the '${' at `start`; return the value and the position after '}'."""
    at = f"at character {start + 1}"
    match = _NAME.match(text, start + 2)
    if not match:
        raise InterpolationError(f"expected a variable name after the '${{' {at}")
    name, pos = match.group(), match.end()
    if client := _CLIENT_VARIABLE.match(text, match.start()):
        raise InterpolationError(_client_variable(*client.groups()))
    if used:
        used(name)
    if text.startswith(":-", pos):
        default, pos = _expand(text, pos + 2, lookup, used, closing=True)
        if pos == len(text):
            raise InterpolationError(f"expected a '}}' to close the '${{{name}:-' {at}")
        return (lookup.get(name) or default), pos + 1
    if text[pos : pos + 1] != "}":
        raise InterpolationError(f"expected '}}' or ':-' after the '${{{name}' {at}")
    if name not in lookup:
        raise InterpolationError(NOT_SET.format(name=name), unset=name)
    return lookup[name], pos + 1


def _client_variable(kind: str, identifier: str) -> str:
    """`${env:NAME}` or `${input:ID}`, said with the reference that `mcpctl config import` writes for it."""
    if kind == "env":
        return f"${{env:{identifier}}} is another client's syntax: write ${{{identifier}}}"
    return (
        f"${{input:{identifier}}} is VS Code's prompted input, and mcpctl prompts for nothing: write"
        f" ${{{env_name(identifier)}}} to read it from the environment (as `mcpctl config import` does)"
    )
