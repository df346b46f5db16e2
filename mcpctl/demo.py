"""A small MCP server shipped with mcpctl (`python -m mcpctl.demo`): what `mcpctl init` starts when no
launcher (uvx, npx, docker) is installed, and the bundled example's server. Runs in its own process,
never in the CLI or the shim."""

from __future__ import annotations

import datetime

from mcp.server import MCPServer

server = MCPServer("mcpctl-demo", instructions="A demo server shipped with mcpctl.")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@server.tool()
def now() -> str:
    """The current time in UTC, ISO 8601."""
    return datetime.datetime.now(datetime.UTC).isoformat()


if __name__ == "__main__":
    server.run("stdio")
