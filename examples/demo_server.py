"""A small MCP server for trying mcpctl: `mcpctl -f examples/mcpctl.toml start --all`."""

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
