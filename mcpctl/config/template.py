"""What `mcpctl init` writes: a commented starter config, or a client's JSON config turned into TOML.

The JSON is read by the importer, as `config import` reads it: the same files give the same servers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpctl.config.model import ServerConfig
from mcpctl.errors import UsageError
from mcpctl.i18n import N_, _
from mcpctl.lean import Record, dataclass

_HEADER = N_("""\
# mcpctl.toml: the MCP servers mcpctl runs. Written by `mcpctl init`; every field is described in the
# README ("Configuration"). Then:
#   mcpctl start --all     # returns when each server has completed the MCP initialize handshake
#   mcpctl status
#   mcpctl stop --all
""")

# The first server, by the launchers found on this machine (in this order of preference).
# A cold `uvx`/`npx -y`/`docker run` downloads the package before the server can answer: startup_timeout
# must cover that download, or the first start fails as a handshake timeout. Comments are translated.
_FIRST = {
    "uvx": N_("""\
# The reference time server, run by uv (https://docs.astral.sh/uv/).
[servers.time]
command = "uvx"
args = ["mcp-server-time"]
startup_timeout = 120             # seconds to complete initialize: the first run downloads the package
"""),
    "npx": N_("""\
# The reference memory server (a knowledge graph), run by Node's npx.
[servers.memory]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-memory"]
startup_timeout = 120             # seconds to complete initialize: the first run downloads the package
"""),
    "docker": N_("""\
# The reference time server, in a container.
[servers.time]
command = "docker"
args = ["run", "-i", "--rm", "mcp/time"]
startup_timeout = 180             # seconds to complete initialize: the first run pulls the image
"""),
}
_FIRST_NAMES = {"uvx": "time", "npx": "memory", "docker": "time"}
_DEMO = N_("""\
# mcpctl's demo server (tools echo, add, now), run by the Python mcpctl runs on: no uvx, npx or docker
# was found here. With uv, try `command = "uvx"`, `args = ["mcp-server-time"]`.
[servers.demo]
command = {python}
args = ["-m", "mcpctl.demo"]
""")
LAUNCHERS = ("uvx", "npx", "docker")
# `init --from`'s usage errors (English: --json carries them); KNOWN lets the CLI show them translated.
NOT_JSON = N_("--from {source}: expected a client's JSON config (*.json)")
NO_SUCH_FILE = N_("--from {source}: no such file")
CLIENT_FILES = N_('such as claude_desktop_config.json ({"mcpServers": ...}) or .vscode/mcp.json ({"servers": ...})')
GIVE_A_PATH = N_("give the path of a client's JSON config, {examples}")
KNOWN = (NOT_JSON, NO_SUCH_FILE, GIVE_A_PATH)

_EXAMPLES = N_("""\
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
""")


def starter(which: Callable[[str], str | None]) -> Converted:
    """The commented starter, its first server run by a launcher `which` finds (else mcpctl's demo server)."""
    import json
    import sys

    found = [name for name in LAUNCHERS if which(name)]
    missing = [name for name in LAUNCHERS if name not in found]
    seen = _("# Launchers found here: {found}").format(found=", ".join(found) or _("none"))
    if missing:
        seen += _(" (not found: {missing})").format(missing=", ".join(missing))
    if found:
        first, name = _(_FIRST[found[0]]), _FIRST_NAMES[found[0]]
    else:
        first, name = _(_DEMO).replace("{python}", json.dumps(sys.executable)), "demo"
    return Converted(f"{_(_HEADER)}\n{seen}\n{first}\n{_(_EXAMPLES)}", [name], {})


@dataclass(frozen=True)
class Converted(Record):
    """A client's config turned into mcpctl.toml text."""

    text: str
    servers: list[str]
    literal_env: dict[str, list[str]]  # server -> env names whose values are written as they are
    notes: tuple[str, ...] = ()  # what the importer left out or translated


def convert(source: Path, target: Path) -> Converted:
    """Read a client's JSON config as `config import` does and write its servers as TOML.

    `${VAR}` references stay references; relative paths are rebased onto the target's folder.
    """
    import tomli_w

    from mcpctl.config import importer
    from mcpctl.config.document import document

    if source.suffix.lower() != ".json":
        raise UsageError(NOT_JSON.format(source=source), CLIENT_FILES)
    if not source.is_file():
        raise UsageError(NO_SUCH_FILE.format(source=source), GIVE_A_PATH.format(examples=CLIENT_FILES))
    imported = importer.read(source, target.absolute().parent)
    config = importer.to_config(imported.document, target)
    header = _("# Converted from {source} by `mcpctl init --from`; fields: see the README (Configuration).")
    header = header.format(source=source) + "\n\n"
    literal = {name: _literal_env(server) for name, server in config.servers.items() if _literal_env(server)}
    text = header + tomli_w.dumps(_whole_numbers(document(config)))
    return Converted(text, list(config.servers), literal, imported.notes)


def _literal_env(server: ServerConfig) -> list[str]:
    """Env names whose values are written out as they are (no ${VAR} reference in them)."""
    return [name for name, value in server.env.items() if "${" not in value]


def _whole_numbers(value: Any) -> Any:
    """`startup_timeout = 120` as the person wrote it, not the 120.0 it is loaded as."""
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
