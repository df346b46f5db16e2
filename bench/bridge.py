"""What sharing one warm server through the shim costs per call, and what it saves per client.

Usage: python bench/bridge.py [--mcpctl PATH] [--calls N] [--skip-wall]
`--mcpctl` is the mcpctl executable to measure (default: the one next to this Python), so that one
checkout's bench can measure another's build (e.g. /work/main/.venv/bin/mcpctl) with the same client code.

1. Latency of `tools/call echo` with the mcp SDK's ClientSession, the same client code both ways:
   A  through the shim: stdio_client(`mcpctl connect demo`) -> pump -> shim socket -> multiplexer -> server
   B  direct: stdio_client(the demo server), as every client does today
   Blocks of calls alternate A, B, A, B ... after a warm-up; p50 and p99 of each, overhead = p50(A) - p50(B).
   Goal: overhead <= 2 ms at p50.
   R  a raw JSON-RPC client of the shim's socket (no pump, no SDK on the client side): the shim's own share.
   C  10 concurrent clients, each its own session calling in a loop: 10 `mcpctl connect` to one shim (A10)
      vs 10 direct sessions, each with its own server process (B10); p50 and p99 over every call.
2. Wall time of one call from a fresh process:
   warm  `mcpctl call demo echo text=hi` with the server already running under its shim
   cold  spawn the server, initialize, call once (the SDK already imported: only the server's cost)
   cold+ the same from a fresh `python` that imports the SDK, as a new client process pays it
   Goal: warm >= 10x faster than cold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _common as c

CALLS = 1000
CLIENTS = 10
CROWD_CALLS = 100  # per client
BLOCK = 100
WALL_RUNS = 15
TARGET_OVERHEAD_S = 0.002


def percentile(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


async def call_latencies(params: Any, blocks: int, into: list[list[float]], order: int) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for _ in range(50):  # warm-up
                await session.call_tool("echo", {"text": "warm"})
            for block in range(blocks):
                del block
                await asyncio.sleep(0)
                samples = []
                for n in range(BLOCK):
                    began = time.perf_counter()
                    await session.call_tool("echo", {"text": f"call {n}"})
                    samples.append(time.perf_counter() - began)
                into[order].extend(samples)


async def concurrent_latencies(params: Any, clients: int, calls: int) -> list[float]:
    """Every call's latency, `clients` sessions calling at once (each after its own warm-up)."""
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    samples: list[float] = []
    start = asyncio.Event()  # set once every session is connected and warmed up
    warmed = [0]

    async def one() -> None:
        with open(os.devnull, "w") as devnull:
            async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                for _ in range(20):
                    await session.call_tool("echo", {"text": "warm"})
                warmed[0] += 1
                if warmed[0] == clients:
                    start.set()
                await start.wait()
                for n in range(calls):
                    began = time.perf_counter()
                    await session.call_tool("echo", {"text": f"call {n}"})
                    samples.append(time.perf_counter() - began)

    await asyncio.gather(*(one() for _ in range(clients)))
    return samples


def raw_latencies(sock_path: Path, count: int) -> list[float]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(sock_path))
        reader = sock.makefile("rb")
        samples = []
        for n in range(count + 50):
            request = {
                "jsonrpc": "2.0",
                "id": n,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "x"}},
            }
            began = time.perf_counter()
            sock.sendall(json.dumps(request).encode() + b"\n")
            reader.readline()
            if n >= 50:
                samples.append(time.perf_counter() - began)
        return samples


async def cold_call(params: Any) -> float:
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    began = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await session.call_tool("echo", {"text": "hi"})
            return time.perf_counter() - began


COLD_SCRIPT = """
import asyncio, os, sys
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
async def main():
    params = StdioServerParameters(command=sys.executable, args=[sys.argv[1]])
    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            await s.call_tool("echo", {"text": "hi"})
asyncio.run(main())
"""


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mcpctl", help="the mcpctl executable to measure (default: the one next to this Python)")
    parser.add_argument("--calls", type=int, default=CALLS, help=f"calls each way for one client (default {CALLS})")
    parser.add_argument("--skip-wall", action="store_true", help="skip part 2 (warm `mcpctl call` vs cold starts)")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    c.header("bridge: tools/call through the shim vs a direct session; warm `mcpctl call` vs a cold start")
    from mcp.client.stdio import StdioServerParameters

    direct = StdioServerParameters(command=sys.executable, args=[str(c.DEMO_SERVER)], env=c.bench_env())
    with c.Sandbox([("demo", c.DEMO_SERVER)]) as box:
        if args.mcpctl:
            box.argv = [args.mcpctl, *box.argv[box.argv.index("-f") :]]
        print(f"mcpctl measured: {box.argv[0]}\n")
        box.run("start", "demo", check=True)
        shared = StdioServerParameters(command=box.argv[0], args=[*box.argv[1:], "connect", "demo"], env=box.env)
        samples: list[list[float]] = [[], []]
        loop = asyncio.new_event_loop()
        try:
            for _ in range(max(1, args.calls // BLOCK // 2)):
                loop.run_until_complete(call_latencies(shared, 2, samples, 0))
                loop.run_until_complete(call_latencies(direct, 2, samples, 1))
            crowd_shared = loop.run_until_complete(concurrent_latencies(shared, CLIENTS, CROWD_CALLS))
            crowd_direct = loop.run_until_complete(concurrent_latencies(direct, CLIENTS, CROWD_CALLS))
        finally:
            loop.close()
        from mcpctl.config.load import load
        from mcpctl.paths import Paths

        project = load(box.config).project  # the state of a config file's servers is kept per project
        raw = raw_latencies(Paths(box.home, project).socket("demo"), args.calls)
        report_latency(samples, raw, crowd_shared, crowd_direct)
        if not args.skip_wall:
            wall(box, direct)


def report_latency(samples: list[list[float]], raw: list[float], crowd: list[float], alone: list[float]) -> None:
    through, straight = samples
    overhead = statistics.median(through) - statistics.median(straight)
    print(f"1. tools/call echo, {len(through)} calls each way (blocks of {BLOCK}, alternating)\n")
    rows = [
        ["A  SDK client -> mcpctl connect -> shim", through, ""],
        ["B  SDK client -> server (direct)", straight, ""],
        ["R  raw JSON-RPC -> shim socket", raw, "no SDK client"],
        [f"A{CLIENTS} {CLIENTS} clients -> mcpctl connect -> one shim", crowd, f"{len(crowd)} calls"],
        [f"B{CLIENTS} {CLIENTS} clients -> {CLIENTS} servers (direct)", alone, f"{len(alone)} calls"],
    ]
    table = [[label, c.ms(statistics.median(s)), c.ms(percentile(s, 99)), note] for label, s, note in rows]
    table.append(["overhead p50(A) - p50(B)", c.ms(overhead), "", f"<= 2 ms  {c.verdict(overhead, TARGET_OVERHEAD_S)}"])
    crowd_overhead = statistics.median(crowd) - statistics.median(alone)
    table.append([f"overhead p50(A{CLIENTS}) - p50(B{CLIENTS})", c.ms(crowd_overhead), "", ""])
    c.print_table(["path", "p50", "p99", "note"], table)


def wall(box: c.Sandbox, direct: Any) -> None:
    warm = [box.timed("call", "demo", "echo", "text=hi")[0] for _ in range(WALL_RUNS)]
    loop = asyncio.new_event_loop()
    try:
        cold = [loop.run_until_complete(cold_call(direct)) for _ in range(5)]
    finally:
        loop.close()
    cold_fresh = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", COLD_SCRIPT, str(c.DEMO_SERVER)], env=c.bench_env(), check=True)
        cold_fresh.append(time.perf_counter() - began)
    warm_s, cold_s, fresh_s = statistics.median(warm), statistics.median(cold), statistics.median(cold_fresh)
    print(f"\n2. one call from a fresh process (median of {WALL_RUNS} warm, 5 cold, 3 cold+)\n")
    c.print_table(
        ["path", "wall", "vs warm"],
        [
            ["warm: mcpctl call demo echo text=hi", c.ms(warm_s), "1.0x"],
            ["cold: spawn + initialize + call (SDK loaded)", c.ms(cold_s), f"{cold_s / warm_s:.1f}x"],
            ["cold+: new python, import SDK, spawn, call", c.ms(fresh_s), f"{fresh_s / warm_s:.1f}x"],
        ],
    )
    verdict = "ok" if cold_s / warm_s >= 10 else "UNDER"
    print(f"\nwarm call {cold_s / warm_s:.1f}x faster than cold (goal >= 10x: {verdict})")


if __name__ == "__main__":
    main()
