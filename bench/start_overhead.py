"""What `mcpctl start` costs on top of starting the server yourself.

A: wall time of `mcpctl -f CFG start demo` (the CLI returns once the MCP initialize handshake is done).
B: the same demo server spawned directly with the mcp SDK client, from just before the spawn to after
   `await session.initialize()` (the SDK is imported once, before any timing).
Overhead = median(A) - median(B). Runs are interleaved (A, B, A, B, ...) after one untimed warm-up of
each, and the server is stopped between runs (`mcpctl stop demo`, untimed). Target: overhead <= 100 ms.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import sys
import time
from typing import TextIO

import _common as c

RUNS = 10
TARGET_S = 0.100


def parse_iso(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main() -> None:
    c.header("start overhead: `mcpctl start demo` vs direct spawn + initialize with the mcp SDK")
    # Imported here, before any timing: B measures spawn-to-initialized, not the SDK's import.
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=[str(c.DEMO_SERVER)], cwd=str(c.DEMO_SERVER.parent))

    async def direct_once(errlog: TextIO) -> float:
        began = time.perf_counter()
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            # Evaluated before the blocks are left: closing stdin and waiting for the exit is not timed.
            return time.perf_counter() - began

    cli_wall: list[float] = []
    cli_reported: list[float] = []
    shim_handshake: list[float] = []
    direct: list[float] = []
    with c.Sandbox([("demo", c.DEMO_SERVER)]) as box, open(os.devnull, "w") as devnull:
        loop = asyncio.new_event_loop()
        try:
            for i in range(RUNS + 1):
                elapsed, result = box.timed("start", "demo")
                reported = re.search(r"ready in ([0-9.]+)s", result.stdout)
                record = next(iter(box.status_json("demo")), {})
                started, ready = parse_iso(record.get("started_at")), parse_iso(record.get("ready_at"))
                box.run("stop", "demo")
                direct_s = loop.run_until_complete(direct_once(devnull))
                if i == 0:
                    continue  # warm-up: page cache, .pyc files, the SDK's own lazy imports
                cli_wall.append(elapsed)
                direct.append(direct_s)
                if reported:
                    cli_reported.append(float(reported.group(1)))
                if started is not None and ready is not None:
                    shim_handshake.append(ready - started)
        finally:
            loop.close()

    overhead = c.median(cli_wall) - c.median(direct)
    rows = [
        ["A  mcpctl start demo (wall)", c.ms(c.median(cli_wall)), c.ms(c.p90(cli_wall)), ""],
        ["B  SDK spawn -> initialized", c.ms(c.median(direct)), c.ms(c.p90(direct)), ""],
        ["overhead = median(A) - median(B)", c.ms(overhead), "", f"<= 100 ms  {c.verdict(overhead, TARGET_S)}"],
    ]
    print(f"{RUNS} runs each (after 1 warm-up), interleaved\n")
    c.print_table(["what", "median", "p90", "target"], rows)
    print()
    print("breakdown of A (informational, from mcpctl's own numbers):")
    detail = []
    if cli_reported:
        detail.append(["mcpctl's 'ready in' (supervisor start -> ready)", c.ms(c.median(cli_reported))])
        cli_own = c.median(cli_wall) - c.median(cli_reported)
        detail.append(["  => CLI interpreter start, imports, config, exit (A - that)", c.ms(cli_own)])
    if shim_handshake:
        detail.append(["shim record started_at -> ready_at (server spawn + handshake)", c.ms(c.median(shim_handshake))])
        if cli_reported:
            boot = c.median(cli_reported) - c.median(shim_handshake)
            detail.append(["  => shim spawn + boot + lock + reporting", c.ms(boot)])
    c.print_table(["part", "median"], detail)


if __name__ == "__main__":
    main()
