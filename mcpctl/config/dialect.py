"""The variables of MCP clients' JSON configs, in mcpctl's terms: what `config import` writes and what a
client file given with `-f` means.

`${env:NAME}` is `${NAME}`; VS Code's `${input:ID}` is an environment variable named after the id (nobody is
there to prompt); `${userHome}` is `${HOME}`; `${workspaceFolder}` is the workspace's path; `${pathSeparator}`
is the separator.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mcpctl.config.interpolate import env_name
from mcpctl.hints import Any

_VARIABLE = re.compile(r"\$\{(env|input):([^}]+)\}|\$\{(workspaceFolder|userHome|pathSeparator)\}")
_WORKSPACE_FOLDERS = (".vscode", ".cursor", ".gemini")


def workspace(path: Path) -> Path:
    """The workspace a client's file at `path` belongs to: the folder above `.vscode/mcp.json` and its kind,
    else the file's own folder."""
    folder = path.absolute().parent
    return folder.parent if folder.name in _WORKSPACE_FOLDERS else folder


def inputs(raw: object, notes: list[str]) -> dict[str, str]:
    """VS Code's prompted inputs (its top-level "inputs"): each becomes an environment variable named after
    its id."""
    found = {}
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            found[entry["id"]] = env_name(entry["id"])
    if found:
        names = ", ".join(sorted(found.values()))
        notes.append(f"VS Code prompts for inputs; mcpctl reads them from the environment: set {names}")
    return found


class Translator:
    """Client variables in strings (in lists and tables too), rewritten as mcpctl references or values."""

    def __init__(self, base: Path, inputs: dict[str, str]) -> None:
        self.base = base
        self.inputs = inputs
        self.notes: list[str] = []

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _VARIABLE.sub(self._one, value)
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        return value

    def _one(self, match: re.Match[str]) -> str:
        kind, name, special = match.groups()
        if kind == "env":
            return f"${{{name}}}"
        if kind == "input":
            if name not in self.inputs:
                self.notes.append(f"input {name!r} (not declared) is read from ${env_name(name)}")
            return f"${{{self.inputs.get(name) or env_name(name)}}}"
        folder = str(self.base).replace("$", "$$")  # a path, not a reference
        return {"workspaceFolder": folder, "userHome": "${HOME}", "pathSeparator": os.sep}[special]
