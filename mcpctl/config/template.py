"""What `mcpctl init` writes: a commented starter config, or a client's JSON config turned into TOML."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpctl.config.model import ServerConfig, load
from mcpctl.errors import UsageError

STARTER = """\
# mcpctl.toml: the MCP servers mcpctl runs. Written by `mcpctl init`; every field is described in the
# README ("Configuration"). Then:
#   mcpctl start --all     # returns when each server has completed the MCP initialize handshake
#   mcpctl status
#   mcpctl stop --all

# The reference time server, run by uv (https://docs.astral.sh/uv/). With Node instead, try
# `npx -y @modelcontextprotocol/server-memory` (command "npx", the rest in args).
[servers.time]
command = "uvx"
args = ["mcp-server-time"]
startup_timeout = 90              # seconds to complete initialize: the first run downloads the package

# A server that needs a key. Uncomment it, then `export EXAMPLE_API_KEY=...` and `mcpctl start example`.
# [servers.example]
# command = "npx"
# args = ["-y", "example-mcp-server", "--region=${EXAMPLE_REGION:-eu}"]
# env = { API_KEY = "${EXAMPLE_API_KEY}" }   # ${VAR} is read when the server starts, never stored
# env_file = [".env"]               # dotenv files, relative to this file
# required_env = ["EXAMPLE_API_KEY"]  # missing: refused before anything is spawned (exit 7)
# stop_timeout = 10                 # seconds from SIGTERM to SIGKILL
#
# # When it fails (these are the defaults): retry after 1 s, 2 s, 4 s ... up to backoff_max, and stop
# # retrying after max_failures failures in a row (state `failed`, see `mcpctl status`).
# restart = "on-failure"            # or "always" (also after exit code 0), or "never"
# backoff_base = 1
# backoff_max = 60
# max_failures = 5
#
# # Health: an MCP ping every health_interval seconds; after unhealthy_after failed pings in a row the
# # server is `unhealthy` (and restarted when restart_on_unhealthy is true).
# health_interval = 30
# health_timeout = 5
# unhealthy_after = 3
# restart_on_unhealthy = true
#
# # Readiness is the MCP handshake by default ("mcp"); "log" waits for an output line matching
# # ready_pattern, "alive" for the process to stay up ready_after seconds.
# readiness = "log"
# ready_pattern = "listening on"
#
# [servers.example.env_rules.EXAMPLE_API_KEY]   # checked before every start, like required_env
# pattern = "[A-Za-z0-9]{32}"
# min_length = 32
"""


@dataclass(frozen=True)
class Converted:
    text: str
    servers: list[str]
    literal_env: dict[str, list[str]]  # server -> env names whose values are written as they are


def convert(source: Path, target: Path) -> Converted:
    """Read a client's JSON config with mcpctl's own loader and write its servers as TOML.

    `${VAR}` references stay references; relative paths are rebased onto the target's folder.
    """
    import tomli_w

    examples = 'such as claude_desktop_config.json ({"mcpServers": ...}) or .vscode/mcp.json ({"servers": ...})'
    if source.suffix.lower() != ".json":
        raise UsageError(f"--from {source}: expected a client's JSON config (*.json)", examples)
    if not source.is_file():
        raise UsageError(f"--from {source}: no such file", f"give the path of a client's JSON config, {examples}")
    config = load(source)
    tables = {name: _table(server, source.parent, target.parent) for name, server in config.servers.items()}
    header = f"# Converted from {source} by `mcpctl init --from`; fields: see the README (Configuration).\n\n"
    literal = {name: _literal_env(server) for name, server in config.servers.items() if _literal_env(server)}
    return Converted(header + tomli_w.dumps({"servers": tables}), list(config.servers), literal)


def _literal_env(server: ServerConfig) -> list[str]:
    """Env names whose values are written out as they are (no ${VAR} reference in them)."""
    return [name for name, value in server.env.items() if "${" not in value]


def _table(server: ServerConfig, source_dir: Path, target_dir: Path) -> dict[str, Any]:
    """The fields that differ from their defaults, in TOML's types."""
    table: dict[str, Any] = {}
    for item in dataclasses.fields(ServerConfig):
        value = getattr(server, item.name)
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        if item.name != "name" and value != default:
            table[item.name] = _plain(value)
    if "cwd" in table:
        table["cwd"] = _rebased(table["cwd"], source_dir, target_dir)
    if "env_file" in table:
        table["env_file"] = [_rebased(path, source_dir, target_dir) for path in table["env_file"]]
    return table


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _rebased(path: str, source_dir: Path, target_dir: Path) -> str:
    """A relative path meant against source_dir, made absolute when the config moves elsewhere."""
    if "${" in path or os.path.isabs(path) or source_dir.absolute() == target_dir.absolute():
        return path
    return os.path.normpath(source_dir.absolute() / path)
