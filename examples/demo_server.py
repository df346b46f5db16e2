"""A small MCP server for trying mcpctl: `mcpctl -f examples/mcpctl.toml start --all` (mcpctl.demo's)."""

from __future__ import annotations

from mcpctl.demo import server

if __name__ == "__main__":
    server.run("stdio")
