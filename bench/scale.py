"""mcpctl with 100 servers: start, status, memory and stop at a scale past the usual.

One fresh state dir and a config of 100 copies of bench/tiny_server.py (a stdlib-only MCP server).
After an untimed warm-up with one server: `mcpctl start --all` (wall time; every server must complete
the MCP initialize handshake before it returns), how many `status --json` then reports ready, the same
`start --all` again with all 100 running (it should do nothing), `status` and `status --json` (median and
p90 of 10 after a warm-up), the memory of the 100 shims (RSS, USS summed with psutil), `stop --all`
(wall time) and how many of our processes were still alive the moment it returned. While start and
stop run, a progress line goes to stderr every few seconds, counted from the servers' state.json files.
No targets: figures for a scale the other benches do not reach. Takes about a minute on 2 cores.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time

import _common as c

COUNT = 100
RUNS = 10
PROGRESS_S = 5.0
SETTLE_S = 1.0


def states(box: c.Sandbox) -> str:
    """What the servers' records say now, e.g. 'ready 60, starting 40' (read from disk, no mcpctl call)."""
    found: collections.Counter[str] = collections.Counter()
    for record in (box.home / "servers").glob("*/state.json"):
        try:
            found[json.loads(record.read_text(encoding="utf-8")).get("state", "?")] += 1
        except (OSError, ValueError):
            found["unreadable"] += 1
    return ", ".join(f"{state} {n}" for state, n in found.most_common()) or "no records yet"


def timed_with_progress(box: c.Sandbox, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Like box.timed, printing the servers' states to stderr every PROGRESS_S seconds while it runs."""
    print(f"mcpctl {' '.join(args)} ...", file=sys.stderr, flush=True)
    began = time.perf_counter()
    with subprocess.Popen(
        [*box.argv, *args], env=box.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        while True:
            try:
                out, err = proc.communicate(timeout=PROGRESS_S)
                break
            except subprocess.TimeoutExpired:
                print(f"  {time.perf_counter() - began:5.1f} s: {states(box)}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - began
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if result.returncode != 0:
        print(f"warning: `mcpctl {' '.join(args)}` exited {result.returncode}: {err.strip()[:300]}", file=sys.stderr)
    return elapsed, result


def main() -> None:
    c.header(f"scale: {COUNT} servers under mcpctl")
    with c.Sandbox([("warmup", c.TINY_SERVER)]) as box:  # untimed: page cache, bytecode cache
        box.run("start", "--all")
        box.run("status")
    with c.Sandbox([(f"tiny{i:03d}", c.TINY_SERVER) for i in range(COUNT)]) as box:
        started, start_result = timed_with_progress(box, "start", "--all")
        records = box.status_json()
        ready = sum(1 for r in records if r.get("state") == "ready")
        not_ready = collections.Counter(r.get("state") for r in records if r.get("state") != "ready")
        again, _ = box.timed("start", "--all", timeout=300)
        print("status x 2 x 10 ...", file=sys.stderr, flush=True)
        plain = box.sample("status", runs=RUNS)
        as_json = box.sample("status", "--json", runs=RUNS)
        time.sleep(SETTLE_S)
        shims = c.memory_of(r["shim_pid"] for r in box.status_json() if r.get("shim_pid"))
        servers = c.memory_of(r["pid"] for r in box.status_json() if r.get("pid"))
        stopped, stop_result = timed_with_progress(box, "stop", "--all")
        alive_after_stop = len(c.tagged(str(box.home)))

    print(f"{COUNT} x bench/tiny_server.py; status: {RUNS} runs each after 1 warm-up\n")
    per = shims.processes or 1
    c.print_table(
        ["what", "value", "note"],
        [
            [f"start --all ({COUNT} servers)", c.ms(started), f"exit {start_result.returncode}"],
            ["  per server", c.ms(started / COUNT), ""],
            ["ready in status --json after it", f"{ready}/{COUNT}", _counts(not_ready)],
            ["start --all again (all running)", c.ms(again), "should do nothing"],
            ["status (median / p90)", f"{c.ms(c.median(plain))} / {c.ms(c.p90(plain))}", f"{COUNT} running"],
            ["status --json (median / p90)", f"{c.ms(c.median(as_json))} / {c.ms(c.p90(as_json))}", f"{COUNT} running"],
            [f"shims: RSS, sum of {shims.processes}", c.mb(shims.rss), f"{c.mb(shims.rss / per)} each"],
            [f"shims: USS, sum of {shims.processes}", c.mb(shims.uss), f"{c.mb(shims.uss / per)} each"],
            [f"servers: RSS, sum of {servers.processes}", c.mb(servers.rss), "for scale"],
            ["stop --all", c.ms(stopped), f"exit {stop_result.returncode}"],
            ["our processes alive when it returned", str(alive_after_stop), "should be 0"],
            ["left behind after the sandbox's cleanup", str(len(box.leftovers)), "should be 0"],
        ],
    )


def _counts(counter: collections.Counter[str | None]) -> str:
    return ", ".join(f"{state}: {n}" for state, n in counter.items())


if __name__ == "__main__":
    main()
