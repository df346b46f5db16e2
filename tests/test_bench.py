"""The benchmarks stay runnable: `bench/run_all.py --light` prints every row of issue 22's table.

A smoke test only: the figures are printed, never asserted (they move with the machine's load).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN_ALL = Path(__file__).resolve().parent.parent / "bench" / "run_all.py"
ROWS = (
    "`mcpctl start tiny` over spawn->initialize",
    "shim memory (idle, one stdio server)",
    "  floor: python importing only the shim's stdlib",
    "  floor: python importing only subprocess, socket, selectors, signal, json",
    "warm `mcpctl call` wall",
    "`connect` overhead per call, p50",
    "`connect` overhead per ping, p50, plain client",
    "5 shims total",
    "`mcpctl status`, 5 running",
    "  floor: python importing only the stdlib `status` does",
    "`stop --all`, 5 ready tiny servers",
    "`start --all`, 5 tiny servers",
)


@pytest.mark.timeout(900)
def test_run_all_light_prints_every_row(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPCTL_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # mcpctl's compiled-methods cache: this test's, not the user's
    proc = subprocess.run(
        [sys.executable, str(RUN_ALL), "--light"], capture_output=True, text=True, env=env, timeout=850, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    for row in ROWS:
        printed = [line for line in lines if line.startswith(row)]
        assert printed, f"row {row!r} missing from:\n{proc.stdout}"
        assert "ms" in printed[0] or "MB" in printed[0], printed[0]
