"""The rows of issue 22's table, each a figure next to its floor, peer or limit measured in the same run.

`one_server(...)` measures the rows about one server (shim memory, `start X` overhead, warm `call`,
`connect` overhead); `many_servers(...)` the rows about a crowd (memory of all shims, `status`,
`stop --all`, `start --all`). Each returns `Row`s; `run_all.py` prints them.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import _common as c
import floors

TINY = c.REPO / "tests" / "fixtures" / "tiny.py"
NODE_MEMORY = (
    Path(os.environ.get("MCPCTL_TEST_SERVERS") or Path.home() / ".cache" / "mcpctl-test-servers")
    / "npm/node_modules/@modelcontextprotocol/server-memory/dist/index.js"
)
MB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One line of the table: what, mcpctl's figure, the reference it is compared with, their ratio, the goal."""

    what: str
    figure: str
    reference: str
    ratio: str
    goal: str
    verdict: str


@dataclass(frozen=True)
class Plan:
    """How much to measure: `light` is the CI smoke test's size (seconds, not minutes)."""

    servers: int
    runs: int
    rounds: int
    calls: int
    settle_s: float

    @classmethod
    def of(cls, light: bool) -> Plan:
        if light:
            return cls(servers=5, runs=3, rounds=1, calls=100, settle_s=0.5)
        return cls(servers=50, runs=10, rounds=3, calls=1000, settle_s=2.0)


def verdict(ok: bool) -> str:
    return "ok" if ok else "OVER"


def ratio(value: float, reference: float) -> str:
    return f"{value / reference:.2f}x" if reference > 0 else "-"


def memory_row(what: str, mem: c.Memory, reference: c.Memory, uss_goal: int, rss_goal: int) -> Row:
    ok = mem.uss <= uss_goal and mem.rss <= rss_goal
    return Row(
        what,
        f"USS {c.mb(mem.uss)}, PSS {c.mb(mem.pss)}, RSS {c.mb(mem.rss)}",
        f"{reference.processes} bare python: USS {c.mb(reference.uss)}",
        f"USS {ratio(mem.uss, reference.uss)}, of goal {ratio(mem.uss, uss_goal)}",
        f"<= {c.mb(uss_goal)} USS, <= {c.mb(rss_goal)} RSS",
        verdict(ok),
    )


def times_row(what: str, samples: Sequence[float], reference: str, floor: Sequence[float], limit: float) -> Row:
    value, base = statistics.median(samples), statistics.median(floor)
    return Row(
        what,
        c.ms(value),
        f"{reference} {c.ms(base)}",
        ratio(value, base),
        f"<= {limit:g}x",
        verdict(value <= limit * base),
    )


def shim_floors(bare: c.Memory) -> list[Row]:
    """What a shim's USS could be at best, measured the same way: a python that imported only the stdlib
    modules the shim imports (mcpctl's own code is the rest of the shim's figure), and one that imported only
    those any shim's job needs (`floors.SHIM_JOB`), however it were written."""
    found = floors.stdlib_of(["-c", "import mcpctl.shim.__main__"])
    return [
        memory_row(
            f"  floor: python importing only the shim's stdlib ({len(found)} modules)",
            floors.idle_python_memory(found),
            bare,
            5 * MB,
            12 * MB,
        ),
        memory_row(
            f"  floor: python importing only {', '.join(floors.SHIM_JOB)}",
            floors.idle_python_memory(floors.SHIM_JOB),
            bare,
            5 * MB,
            12 * MB,
        ),
    ]


def python_args(box: c.Sandbox) -> list[str]:
    """The box's command line as arguments to the running Python (the console script is a Python file)."""
    return box.argv[1:] if box.argv[0] == sys.executable else box.argv


def shim_of(box: c.Sandbox, name: str) -> int:
    return int(box.status_json(name)[0]["shim_pid"])


def start_overhead(box: c.Sandbox, name: str, argv: Sequence[str], runs: int) -> Row:
    """`mcpctl start NAME` wall vs the same server spawned and initialized directly, interleaved."""
    cli: list[float] = []
    direct: list[float] = []
    for i in range(runs + 1):
        elapsed, _ = box.timed("start", name)
        box.run("stop", name)
        spawn_s, _stop_s = floors.direct_round(argv, 1)
        if i:  # the first round warms the page cache and bytecode
            cli.append(elapsed)
            direct.append(spawn_s)
    overhead = statistics.median(cli) - statistics.median(direct)
    return Row(
        f"`mcpctl start {name}` over spawn->initialize",
        f"+{c.ms(overhead)} ({c.ms(statistics.median(cli))} wall)",
        f"server's own spawn->initialize {c.ms(statistics.median(direct))}",
        ratio(statistics.median(cli), statistics.median(direct)),
        "<= +100 ms",
        verdict(overhead <= 0.100),
    )


def connect_overhead(box: c.Sandbox, calls: int) -> Row:
    """p50 of tools/call through `mcpctl connect` minus p50 of a direct session (bench/bridge.py's client)."""
    import bridge
    from mcp.client.stdio import StdioServerParameters

    direct = StdioServerParameters(command=sys.executable, args=[str(c.DEMO_SERVER)], env=c.bench_env())
    shared = StdioServerParameters(command=box.argv[0], args=[*box.argv[1:], "connect", "demo"], env=box.env)
    samples: list[list[float]] = [[], []]
    blocks = max(1, calls // bridge.BLOCK // 2)
    loop = asyncio.new_event_loop()
    try:
        for _ in range(blocks):
            loop.run_until_complete(bridge.call_latencies(shared, 1, samples, 0))
            loop.run_until_complete(bridge.call_latencies(direct, 1, samples, 1))
    finally:
        loop.close()
    through, straight = statistics.median(samples[0]), statistics.median(samples[1])
    overhead = through - straight
    return Row(
        "`connect` overhead per call, p50",
        f"{overhead * 1000:.3f} ms ({len(samples[0])} calls)",
        f"direct session p50 {c.ms(straight)}",
        ratio(through, straight),
        "<= 0.2 ms",
        verdict(overhead <= 0.0002),
    )


def raw_pings(argv: Sequence[str], env: dict[str, str], count: int) -> list[float]:
    """Round trips of `ping` by a plain JSON-RPC client (buffered pipes, no SDK) to a stdio command."""
    import json
    import subprocess

    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    assert proc.stdout is not None
    samples = []
    try:
        for n in range(count + 50):  # the first 50: the handshake's and the warm-up's
            message = {"jsonrpc": "2.0", "id": n, "method": "initialize" if n == 0 else "ping", "params": {}}
            began = time.perf_counter()
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
            while (line := proc.stdout.readline()) and json.loads(line).get("id") != n:
                pass
            if not line:
                raise RuntimeError(f"{' '.join(argv)} ended before answering request {n}")
            if n >= 50:
                samples.append(time.perf_counter() - began)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()
    return samples


def raw_connect_overhead(box: c.Sandbox, calls: int) -> Row:
    """p50 of a ping through `mcpctl connect tiny` minus p50 of one straight to the tiny server, both by a
    plain client: what mcpctl adds to a round trip when neither end is an SDK.

    Short rounds, alternating, each with fresh processes: on this kind of machine a round trip between two
    processes takes ~60 us when the scheduler keeps them on one CPU and ~400 us when each wakes the other
    across CPUs, and a pair keeps its placement for most of its life, so one long round each way can land
    in different modes (the overhead came out negative). `calls // 100` rounds each (ten in a full run)
    sample both paths' mixtures."""
    through: list[float] = []
    straight: list[float] = []
    for _ in range(max(2, calls // 100)):
        through += raw_pings([*box.argv, "connect", "tiny"], box.env, 50)
        straight += raw_pings([sys.executable, str(TINY)], c.bench_env(), 50)
    overhead = statistics.median(through) - statistics.median(straight)
    return Row(
        "`connect` overhead per ping, p50, plain client",
        f"{overhead * 1000:.3f} ms ({len(through)} pings)",
        f"straight to tiny p50 {statistics.median(straight) * 1000:.3f} ms",
        ratio(statistics.median(through), statistics.median(straight)),
        "<= 0.2 ms",
        verdict(overhead <= 0.0002),
    )


def one_server(plan: Plan, node: bool) -> list[Row]:
    """Rows about one server: shim memory, `start` overhead (tiny; node server-memory too with --node), call,
    connect."""
    rows = []
    with c.Sandbox([("tiny", TINY), ("demo", c.DEMO_SERVER)]) as box:
        rows.append(start_overhead(box, "tiny", [sys.executable, str(TINY)], plan.runs))
        box.run("start", "tiny", check=True)
        time.sleep(plan.settle_s)
        shim = c.memory_of([shim_of(box, "tiny")])
        bare = floors.idle_python_memory()
        rows.append(memory_row("shim memory (idle, one stdio server)", shim, bare, 5 * MB, 12 * MB))
        rows.extend(shim_floors(bare))
        box.run("start", "demo", check=True)
        warm = box.sample("call", "demo", "echo", "text=hi", runs=plan.runs)
        rows.append(times_row("warm `mcpctl call` wall", warm, "python -c pass", floors.interpreter_wall(plan.runs), 5))
        rows.append(connect_overhead(box, plan.calls))
        rows.append(raw_connect_overhead(box, plan.calls))
    if node:
        rows.append(node_start_overhead(plan))
    return rows


def node_start_overhead(plan: Plan) -> Row:
    node = node_binary()
    with c.Sandbox([("memory", NODE_MEMORY)], command=node) as box:
        return start_overhead(box, "memory", [node, str(NODE_MEMORY)], plan.runs)


def node_binary() -> str:
    import shutil

    found = shutil.which("node")
    if found is None or not NODE_MEMORY.exists():
        raise SystemExit(f"--node needs node on PATH and {NODE_MEMORY} (`bash .ci/test-servers`)")
    return found


@dataclass
class Crowd:
    """What the rounds over many servers collected."""

    start: list[float]
    stop: list[float]
    direct_start: list[float]
    direct_stop: list[float]
    ready: list[int]


def crowd_rounds(box: c.Sandbox, argv: Sequence[str], plan: Plan, count: int, during: object = None) -> Crowd:
    """Rounds of `start --all` / `stop --all`, each followed by the same work done directly; one untimed
    round of mcpctl first (bytecode, page cache), since the direct work after it always finds both warm."""
    crowd = Crowd([], [], [], [], [])
    box.run("start", "--all", timeout=600)
    box.run("stop", "--all", timeout=600)
    for i in range(plan.rounds):
        elapsed, _ = box.timed("start", "--all", timeout=600)
        crowd.start.append(elapsed)
        crowd.ready.append(box.ready_count())
        if i == 0 and callable(during):
            during()
        crowd.stop.append(box.timed("stop", "--all", timeout=600)[0])
        spawn_s, stop_s = floors.direct_round(argv, count)
        crowd.direct_start.append(spawn_s)
        crowd.direct_stop.append(stop_s)
    return crowd


def many_servers(plan: Plan, node: bool) -> list[Row]:
    """Rows about a crowd: memory of all shims, `status` with all running, `stop --all`, `start --all`."""
    n = plan.servers
    names = [(f"t{i:02d}", TINY) for i in range(n)]
    extra: list[Row] = []

    with c.Sandbox(names) as box:

        def while_running() -> None:
            time.sleep(plan.settle_s)
            shims = c.memory_of(box.shim_pids())
            bare = floors.idle_python_memory()
            reference = c.Memory(n, bare.rss * n, bare.uss * n, bare.pss * n)
            extra.append(memory_row(f"{n} shims total", shims, reference, 5 * MB * n, 12 * MB * n))
            status = box.sample("status", runs=plan.runs)
            floor = floors.interpreter_wall(plan.runs)
            extra.append(times_row(f"`mcpctl status`, {n} running", status, "python -c pass", floor, 4))
            stdlib = floors.interpreter_wall(plan.runs, floors.stdlib_of([*python_args(box), "status"], box.env))
            extra.append(
                times_row("  floor: python importing only the stdlib `status` does", stdlib, "python -c pass", floor, 4)
            )

        crowd = crowd_rounds(box, [sys.executable, str(TINY)], plan, n, while_running)
    rows = [*extra, *crowd_rows(crowd, n, "tiny")]
    if node:
        node_argv = [node_binary(), str(NODE_MEMORY)]
        with c.Sandbox([(f"m{i:02d}", NODE_MEMORY) for i in range(n)], command=node_argv[0]) as box:
            node_plan = Plan(n, plan.runs, min(plan.rounds, 2), plan.calls, plan.settle_s)  # a round is ~20 s
            node_crowd = crowd_rounds(box, node_argv, node_plan, n)
        rows.extend(crowd_rows(node_crowd, n, "node server-memory"))
    return rows


def crowd_rows(crowd: Crowd, n: int, kind: str) -> list[Row]:
    ready = f" ({min(crowd.ready)}/{n} ready)" if min(crowd.ready) != n else ""
    return [
        times_row(f"`stop --all`, {n} ready {kind} servers", crowd.stop, "close stdin + wait", crowd.direct_stop, 2),
        times_row(
            f"`start --all`, {n} {kind} servers{ready}",
            crowd.start,
            "direct parallel spawn+initialize",
            crowd.direct_start,
            1.1,
        ),
    ]
