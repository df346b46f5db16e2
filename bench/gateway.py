"""What the HTTP gateway costs per call: `tools/call echo` with the mcp SDK's ClientSession, three ways.

   G  through the gateway: streamable_http_client -> gateway -> shim socket -> multiplexer -> server
   C  through `mcpctl connect`: stdio_client -> pump -> shim socket -> multiplexer -> server
   D  direct: stdio_client(the demo server)
Blocks of calls alternate G, C, D after a warm-up; p50 and p99 of each.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import _common as c

CALLS = 600  # per way
BLOCK = 100
WARM = 30


def percentile(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


async def timed_calls(session: Any, into: list[float]) -> None:
    for _ in range(WARM):
        await session.call_tool("echo", {"text": "warm"})
    for n in range(BLOCK):
        began = time.perf_counter()
        await session.call_tool("echo", {"text": f"call {n}"})
        into.append(time.perf_counter() - began)


async def over_stdio(params: Any, into: list[float]) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await timed_calls(session, into)


async def over_http(url: str, token: str, into: list[float]) -> None:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client,
        streamable_http_client(url, http_client=client) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        await timed_calls(session, into)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    c.header("gateway: tools/call through the gateway vs through `mcpctl connect` vs direct")
    from mcp.client.stdio import StdioServerParameters

    direct = StdioServerParameters(command=sys.executable, args=[str(c.DEMO_SERVER)], env=c.bench_env())
    with c.Sandbox([("demo", c.DEMO_SERVER)]) as box:
        port = free_port()
        box.config.write_text(box.config.read_text() + f'\n[gateway]\nlisten = "127.0.0.1:{port}"\n')
        try:
            box.run("start", "demo", check=True)
            box.run("gateway", "start", check=True)
            token = box.run("token", "create", "bench", check=True).stdout.strip()
            shared = StdioServerParameters(command=box.argv[0], args=[*box.argv[1:], "connect", "demo"], env=box.env)
            url = f"http://127.0.0.1:{port}/servers/demo/mcp"
            ways: dict[str, Callable[[list[float]], Awaitable[None]]] = {
                "gateway (HTTP)": lambda into: over_http(url, token, into),
                "mcpctl connect": lambda into: over_stdio(shared, into),
                "direct (stdio)": lambda into: over_stdio(direct, into),
            }
            samples: dict[str, list[float]] = {name: [] for name in ways}
            for _ in range(CALLS // BLOCK):
                for name, way in ways.items():
                    asyncio.run(way(samples[name]))
        finally:
            box.run("gateway", "stop")
    rows = [[name, c.ms(percentile(s, 50)), c.ms(percentile(s, 99)), str(len(s))] for name, s in samples.items()]
    c.print_table(["WAY", "P50", "P99", "CALLS"], rows)
    print(c.env_note())


if __name__ == "__main__":
    main()
