"""Issue 22's table: every row as a figure next to its floor, peer or limit, measured in the same run.

    python bench/run_all.py            # 50 servers, 10 runs a figure (a few minutes on 2 cores)
    python bench/run_all.py --light    # the CI smoke test's size: 5 servers, 3 runs (seconds)
    python bench/run_all.py --node     # also start/stop rows with node server-memory (the test-server cache)
    python bench/run_all.py --scripts  # then the older detailed scripts, one after the other

Exit status is 0 unless something crashed: the benchmarks print figures, they assert nothing (a row
over its goal says OVER).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import _common as c
import figures

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "cli_startup.py",
    "start_overhead.py",
    "status_latency.py",
    "shim_memory.py",
    "scale.py",
    "vs_supervisord.py",
)
HEADERS = ["what", "mcpctl", "reference (same run)", "ratio", "goal", ""]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--light", action="store_true", help="CI-light: 5 servers, 3 runs a figure")
    parser.add_argument("--node", action="store_true", help="also measure node server-memory (start, start --all)")
    parser.add_argument("--scripts", action="store_true", help="then run the detailed scripts in turn")
    return parser.parse_args()


def run_scripts() -> list[str]:
    crashed = []
    for script in SCRIPTS:
        began = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script)], check=False).returncode
        print(f"-- {script}: exit {code}, {time.perf_counter() - began:.1f} s\n", flush=True)
        if code != 0:
            crashed.append(script)
    return crashed


def main() -> int:
    args = arguments()
    plan = figures.Plan.of(args.light)
    c.header(f"issue 22: {'light' if args.light else 'full'} ({plan.servers} servers, {plan.runs} runs a figure)")
    began = time.perf_counter()
    rows = [*figures.one_server(plan, args.node), *figures.many_servers(plan, args.node)]
    c.print_table(HEADERS, [[r.what, r.figure, r.reference, r.ratio, r.goal, r.verdict] for r in rows])
    print(f"\n({time.perf_counter() - began:.1f} s)", flush=True)
    crashed = run_scripts() if args.scripts else []
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
