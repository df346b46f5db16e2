"""The variables of MCP clients' JSON configs, in mcpctl's terms: what `config import` writes and what a
client file given with `-f` means.

`${env:NAME}` is `${NAME}`; VS Code's `${input:ID}` is an environment variable named after the id (nobody is
there to prompt); `${userHome}` is `${HOME}`; `${workspaceFolder}` is the workspace's path and
`${workspaceFolderBasename}` its name; `${pathSeparator}` and its short form `${/}` are the separator (VS Code's
variables, which Cursor reads in its mcp.json too). Gemini CLI also reads `$NAME` as the variable, in every
string of its settings.json; to the other clients it is literal text.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mcpctl.config.interpolate import EXPANDED, env_name
from mcpctl.hints import Any
from mcpctl.i18n import N_

# The notes a translation leaves (English: --json carries them); NOTES lets the CLI show them translated.
PROMPTED = N_("VS Code prompts for inputs; mcpctl reads them from the environment: set {names}")
UNDECLARED = N_("input {name} (not declared) is read from ${variable}")
NOTES = (PROMPTED, UNDECLARED)

# A client's variables, the start of a bare ${NAME} or ${NAME:-default} (Claude Code's and Gemini CLI's own
# syntax, and mcpctl's; defaults may nest), Gemini CLI's $NAME, else one literal $.
_VARIABLE = re.compile(
    r"\$\{(env|input):([^}]+)\}|\$\{(workspaceFolder|workspaceFolderBasename|userHome|pathSeparator|/)\}"
    r"|(\$\{[A-Za-z_][A-Za-z0-9_]*(?=\}|:-))|\$([A-Za-z_][A-Za-z0-9_]*)|\$"
)
_WORKSPACE_FOLDERS = (".vscode", ".cursor", ".gemini")
_GEMINI = ".gemini"
_RENAMED = {"httpUrl": "url", "serverUrl": "url"}  # the clients' names of settings mcpctl expands


def workspace(path: Path) -> Path:
    """The workspace a client's file at `path` belongs to: the folder above `.vscode/mcp.json` and its kind,
    else the file's own folder."""
    folder = path.absolute().parent
    return folder.parent if folder.name in _WORKSPACE_FOLDERS else folder


def dollar_names(path: Path) -> bool:
    """Whether a client's file at `path` reads `$NAME` as a variable: Gemini CLI's settings.json, known by
    its folder (`.gemini/`)."""
    return path.absolute().parent.name == _GEMINI


def inputs(raw: object, notes: list[str]) -> dict[str, str]:
    """VS Code's prompted inputs (its top-level "inputs"): each becomes an environment variable named after
    its id."""
    found = {}
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            found[entry["id"]] = env_name(entry["id"])
    if found:
        names = ", ".join(sorted(found.values()))
        notes.append(PROMPTED.format(names=names))
    return found


class Translator:
    """Client variables in strings (in lists and tables too), rewritten as mcpctl references or values;
    every other `$` is the client's literal text, written `$$` (no client reads `$$` as an escape).

    `bare`: a bare `${NAME}` is an environment variable, as Claude Code and Gemini CLI read it (and as
    mcpctl's own export and a file given with -f write it); to the other clients it is literal text.
    `dollar`: so is `$NAME`, as Gemini CLI reads it (`${NAME}` in mcpctl's terms).
    """

    def __init__(self, base: Path, inputs: dict[str, str], bare: bool = True, dollar: bool = False) -> None:
        self.base = base
        self.inputs = inputs
        self.bare = bare
        self.dollar = dollar
        self.notes: list[str] = []

    def __call__(self, value: Any, expanded: bool = True) -> Any:
        """`value` translated; `expanded`: it goes in a setting whose references mcpctl expands
        (interpolate.EXPANDED), so a literal `$` is written `$$` there, and only there."""
        if isinstance(value, str):
            return self._text(value, expanded)
        if isinstance(value, list):
            return [self(item, expanded) for item in value]
        if isinstance(value, dict):
            return {key: self(item, expanded) for key, item in value.items()}
        return value

    def table(self, table: Any) -> Any:
        """A client's server entry translated, each setting as mcpctl reads it (its client's name or
        mcpctl's: envFile, serverUrl, httpUrl, ...)."""
        if not isinstance(table, dict):
            return table
        return {key: self(value, _RENAMED.get(key, key) in EXPANDED) for key, value in table.items()}

    def _text(self, text: str, expanded: bool) -> str:
        out, pos = [], 0
        while (match := _VARIABLE.search(text, pos)) is not None:
            out.append(text[pos : match.start()])
            end = _closing(text, match.end()) if match.group(4) and self.bare else None
            out.append(text[match.start() : end] if end is not None else self._one(match, expanded))
            pos = end if end is not None else match.end()
        return "".join(out) + text[pos:]

    def _one(self, match: re.Match[str], expanded: bool) -> str:
        kind, name, special, bare, dollar = match.groups()
        literal = "$$" if expanded else "$"
        if bare is not None:  # literal text to this client (a reference's start, else _text keeps it whole)
            return literal + bare[1:]
        if dollar is not None:
            return f"${{{dollar}}}" if self.dollar else literal + dollar
        if kind is None and special is None:
            return literal
        if kind == "env":
            return f"${{{name}}}"
        if kind == "input":
            if name not in self.inputs:
                self.notes.append(UNDECLARED.format(name=repr(name), variable=env_name(name)))
            return f"${{{self.inputs.get(name) or env_name(name)}}}"
        if special == "userHome":
            return "${HOME}"
        if special in ("pathSeparator", "/"):
            return os.sep
        folder = self.base if special == "workspaceFolder" else self.base.name
        return str(folder).replace("$", literal)  # a path or a name, not a reference


def _closing(text: str, pos: int) -> int | None:
    """Where the reference whose name ends at `pos` ends (after its `}`), nested ones inside; None if never."""
    depth = 1
    while pos < len(text):
        if text.startswith("${", pos):
            depth, pos = depth + 1, pos + 2
            continue
        if text[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos + 1
        pos += 1
    return None


def client_form(table: Any) -> Any:
    """A server's table as a client reads it (JSON export): `$$`, mcpctl's escape, is the literal `$` a
    client writes, in the settings mcpctl expands. A literal `${` has no client form: it reads as a reference."""
    if not isinstance(table, dict):
        return table
    return {key: _unescaped(value) if key in EXPANDED else value for key, value in table.items()}


def _unescaped(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_unescaped(item) for item in value]
    if isinstance(value, dict):
        return {key: _unescaped(item) for key, item in value.items()}
    return value
