"""How long `mcpctl status` takes as the number of running servers grows.

For N in 1, 10, 50: a fresh state dir and a config of N copies of bench/tiny_server.py (a stdlib-only MCP
server, so fifty are cheap), `mcpctl start --all`, then the wall time of `mcpctl status` and of
`mcpctl status --json` (median and p90 of 10 runs each, after one warm-up), then `mcpctl stop --all`.
Also shows how many servers status reported ready (a sanity check) and what start/stop --all cost.
Target: <= 120 ms at 50.
"""

from __future__ import annotations

import _common as c

COUNTS = (1, 10, 50)
RUNS = 10
TARGET_S = 0.120


def main() -> None:
    c.header("status latency: `mcpctl status` with 1, 10 and 50 running servers")
    with c.Sandbox([("warmup", c.TINY_SERVER)]) as box:  # untimed: page cache, bytecode cache
        box.run("start", "--all")
        box.run("status")
    rows = []
    lifecycle = []
    for count in COUNTS:
        servers = [(f"tiny{i:02d}", c.TINY_SERVER) for i in range(count)]
        with c.Sandbox(servers) as box:
            started, result = box.timed("start", "--all")
            ready = box.ready_count()
            plain = box.sample("status", runs=RUNS)
            as_json = box.sample("status", "--json", runs=RUNS)
            stopped, _ = box.timed("stop", "--all")
        lifecycle.append([str(count), f"{ready}/{count}", c.ms(started), c.ms(stopped), str(len(box.leftovers))])
        for label, samples in (("status", plain), ("status --json", as_json)):
            target = f"<= 120 ms  {c.verdict(c.median(samples), TARGET_S)}" if count == 50 else ""
            rows.append([f"{label} @ {count}", c.ms(c.median(samples)), c.ms(c.p90(samples)), target])
        if result.returncode != 0:
            print(f"warning: start --all with {count} exited {result.returncode}")

    print(f"{RUNS} runs each (after 1 warm-up), servers: bench/tiny_server.py\n")
    c.print_table(["what", "median", "p90", "target"], rows)
    print()
    print("context (one run each, not targets):")
    c.print_table(["servers", "ready in status", "start --all", "stop --all", "left behind"], lifecycle)


if __name__ == "__main__":
    main()
