"""Run every benchmark in turn with this Python: `python bench/run_all.py` from the repo root.

Each script runs in its own process (own temporary state dir, own cleanup); a failing one does not stop
the rest. Exit status is 0 unless a script crashed: the benchmarks print figures, they assert nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "cli_startup.py",
    "start_overhead.py",
    "status_latency.py",
    "shim_memory.py",
    "scale.py",
    "vs_supervisord.py",
)


def main() -> int:
    crashed = []
    for script in SCRIPTS:
        began = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script)], check=False).returncode
        print(f"-- {script}: exit {code}, {time.perf_counter() - began:.1f} s\n", flush=True)
        if code != 0:
            crashed.append(script)
    if crashed:
        print(f"crashed: {', '.join(crashed)}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
