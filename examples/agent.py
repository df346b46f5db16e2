"""An agent that uses two MCP servers through mcpctl: the time server and the memory server.

    python examples/agent.py [CONFIG]    (default: examples/public-servers.toml, which needs uvx and npx)

Both servers are started if they are not running, and stay running for the next agent, `mcpctl
connect` clients and the CLI alike: this program spawns no server of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from mcp.types import CallToolResult, TextContent

from mcpctl import Manager, MCPCtlError


def text_of(result: CallToolResult) -> str:
    return "\n".join(item.text for item in result.content if isinstance(item, TextContent))


async def run(manager: Manager) -> str:
    # One call on a session of its own: the server is started if need be, a lost connection retried.
    now = await manager.call_tool("time", "get_current_time", {"timezone": "UTC"}, retries=3, timeout=60)
    # Several calls on one session: the shared server's session, through its shim.
    async with manager.session("memory") as memory:
        tools = {tool.name for tool in (await memory.list_tools()).tools}
        if "add_observations" not in tools:
            raise SystemExit(f"the memory server has no add_observations tool (it has {sorted(tools)})")
        agent = {"name": "agent", "entityType": "program", "observations": []}
        await memory.call_tool("create_entities", {"entities": [agent]})  # kept as it is when it exists
        seen = {"entityName": "agent", "contents": [f"ran at {text_of(now)}"]}
        await memory.call_tool("add_observations", {"observations": [seen]})
        graph = await memory.call_tool("read_graph", {})
    return text_of(graph)


def main() -> int:
    config = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("public-servers.toml")
    manager = Manager(config=config)
    try:
        print(anyio.run(run, manager))
    except MCPCtlError as error:  # every failure: its type, message, hint, retryable and exit code
        print(f"error: {error.message} ({error.type}, retryable: {error.retryable})", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return int(error.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
