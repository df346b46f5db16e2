"""The floors the issue-22 table compares mcpctl with: what the same work costs done directly.

- `spawn_ready(argv, n)`: spawn n copies of a stdio server at once, send each an MCP `initialize`, read
  every answer; the wall time from the first spawn to the last answer (what `start --all` must approach).
- `close_and_wait(procs)`: close every server's stdin, then wait for all to exit (what `stop --all` must
  approach: a polite stdio stop without any supervisor).
- `interpreter_wall(runs)`: wall times of `python -c pass` (the floor of any Python CLI).
- `idle_python_memory()`: USS and RSS of a bare interpreter idling on stdin.

Not a benchmark itself; `figures.py` uses these.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence

import _common as c

INITIALIZE = (
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
    )
    + "\n"
).encode()


def spawn_ready(argv: Sequence[str], count: int) -> tuple[float, list[subprocess.Popen[bytes]]]:
    """Spawn `count` servers, initialize each (all in flight at once); seconds until the last answered."""
    began = time.perf_counter()
    procs = [
        subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=c.bench_env(),
        )
        for _ in range(count)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(INITIALIZE)
        proc.stdin.flush()
    for proc in procs:
        assert proc.stdout is not None
        if not proc.stdout.readline():
            print(f"warning: direct server pid {proc.pid} exited before answering initialize", file=sys.stderr)
    return time.perf_counter() - began, procs


def close_and_wait(procs: Sequence[subprocess.Popen[bytes]]) -> float:
    """Close every server's stdin, then wait for them all to exit; seconds taken."""
    began = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    elapsed = time.perf_counter() - began
    for proc in procs:
        if proc.stdout is not None:
            proc.stdout.close()
    return elapsed


def direct_round(argv: Sequence[str], count: int) -> tuple[float, float]:
    """One round of both floors: (spawn + initialize of `count`, close + wait of the same)."""
    started, procs = spawn_ready(argv, count)
    return started, close_and_wait(procs)


def interpreter_wall(runs: int) -> list[float]:
    """Wall times of `python -c pass` (after one untimed warm-up)."""
    argv = [sys.executable, "-c", "pass"]
    subprocess.run(argv, env=c.bench_env(), check=True)
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, env=c.bench_env(), check=True)
        samples.append(time.perf_counter() - began)
    return samples


def idle_python_memory() -> c.Memory:
    """USS and RSS of `python -c pass`'s interpreter, kept alive idling on stdin."""
    code = "import sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()"
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=c.bench_env()
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.3)
        try:
            return c.memory_of([proc.pid])
        finally:
            proc.communicate(timeout=10)
