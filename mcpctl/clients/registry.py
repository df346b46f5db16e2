"""The MCP clients mcpctl knows, and where each keeps its servers on Linux and macOS.

Paths follow each client's documentation; `$HOME` (and `$XDG_CONFIG_HOME` on Linux) are honoured, and so
are the clients' own overrides: `$CLAUDE_CONFIG_DIR` (Claude Code), `$CODEX_HOME` (Codex CLI). Project files
are looked for in the working directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from mcpctl.errors import UsageError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass


@dataclass(frozen=True)
class Location(Record):
    """One config file of a client and where its servers are in it."""

    path: Path
    scope: str  # "user" or "project"
    container: tuple[str, ...] = ("mcpServers",)  # the keys leading to the NAME -> entry table
    fmt: str = "json"  # "json" (comments and trailing commas allowed) or "toml"
    per_project: bool = False  # ~/.claude.json: also projects.PATH.mcpServers
    url_is_sse: bool = False  # Gemini CLI: `url` is an SSE endpoint, `httpUrl` a streamable one
    bare: bool = False  # a bare ${NAME} is an environment variable (Claude Code, Gemini CLI), not literal text
    dollar: bool = False  # so is $NAME (Gemini CLI)


@dataclass(frozen=True)
class Client(Record):
    """An MCP client mcpctl can set up: its id, its name, and where its config files are."""

    id: str
    label: str
    locations: Callable[[Path], list[Location]]  # given the project folder (the working directory)


def _home() -> Path:
    return Path.home()


def _app_config() -> Path:
    """Where desktop apps keep their settings: ~/Library/Application Support, or $XDG_CONFIG_HOME."""
    if sys.platform == "darwin":
        return _home() / "Library" / "Application Support"
    return Path(os.environ.get("XDG_CONFIG_HOME") or _home() / ".config")


def _claude_desktop(_project: Path) -> list[Location]:
    return [Location(_app_config() / "Claude" / "claude_desktop_config.json", "user")]


def _claude_code(project: Path) -> list[Location]:
    folder = Path(os.environ["CLAUDE_CONFIG_DIR"]) if os.environ.get("CLAUDE_CONFIG_DIR") else _home()
    return [
        Location(folder / ".claude.json", "user", per_project=True, bare=True),
        Location(project / ".mcp.json", "project", bare=True),
    ]


def _cursor(project: Path) -> list[Location]:
    return [Location(_home() / ".cursor" / "mcp.json", "user"), Location(project / ".cursor" / "mcp.json", "project")]


def _vscode(project: Path) -> list[Location]:
    user = _app_config() / "Code" / "User" / "mcp.json"
    return [Location(user, "user", ("servers",)), Location(project / ".vscode" / "mcp.json", "project", ("servers",))]


def _windsurf(_project: Path) -> list[Location]:
    return [Location(_home() / ".codeium" / "windsurf" / "mcp_config.json", "user")]


def _codex(_project: Path) -> list[Location]:
    folder = Path(os.environ["CODEX_HOME"]) if os.environ.get("CODEX_HOME") else _home() / ".codex"
    return [Location(folder / "config.toml", "user", ("mcp_servers",), "toml")]


def _gemini(project: Path) -> list[Location]:
    user = _home() / ".gemini" / "settings.json"
    return [
        Location(user, "user", url_is_sse=True, bare=True, dollar=True),
        Location(project / ".gemini" / "settings.json", "project", url_is_sse=True, bare=True, dollar=True),
    ]


CLIENTS = (
    Client("claude-desktop", "Claude Desktop", _claude_desktop),
    Client("claude-code", "Claude Code", _claude_code),
    Client("cursor", "Cursor", _cursor),
    Client("vscode", "VS Code", _vscode),
    Client("windsurf", "Windsurf", _windsurf),
    Client("codex", "Codex CLI", _codex),
    Client("gemini", "Gemini CLI", _gemini),
)
BY_ID = {client.id: client for client in CLIENTS}


UNKNOWN, ONE_OF = N_("unknown client {name!r}"), N_("use one of: {ids}")
KNOWN = (UNKNOWN, ONE_OF)  # lets the CLI show the error translated


def client(identifier: str) -> Client:
    """The client named `identifier`, or a usage error listing the ids."""
    if identifier not in BY_ID:
        raise UsageError(UNKNOWN.format(name=identifier), ONE_OF.format(ids=", ".join(BY_ID)))
    return BY_ID[identifier]
