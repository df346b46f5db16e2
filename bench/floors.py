"""The floors the issue-22 table compares mcpctl with: what the same work costs done directly.

- `spawn_ready(argv, n)`: spawn n copies of a stdio server at once, send each an MCP `initialize`, read
  every answer; the wall time from the first spawn to the last answer (what `start --all` must approach).
- `close_and_wait(procs)`: close every server's stdin, then wait for all to exit (what `stop --all` must
  approach: a polite stdio stop without any supervisor).
- `interpreter_wall(runs)`: wall times of `python -c pass` (the floor of any Python CLI); with `imports`,
  of a `python` that only imports those modules.
- `idle_python_memory()`: USS and RSS of a bare interpreter idling on stdin; with `imports`, of one that
  imported those modules first.
- `stdlib_of(argv)`: the standard-library modules a Python command imports beyond a bare interpreter's,
  found by running it: what `status` or a shim takes from the stdlib, whatever mcpctl's own code costs.
- `SHIM_JOB`: the stdlib modules any shim's job needs, however it is written (spawn a child, serve a Unix
  socket, wait on many descriptors, handle signals, speak JSON).

Not a benchmark itself; `figures.py` uses these.
"""

from __future__ import annotations

import importlib.util
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


SHIM_JOB = ("subprocess", "socket", "selectors", "signal", "json")
# mcpctl.lean's stand-in, so that `dataclasses` costs here what it costs mcpctl (see stdlib_of)
_DEFER_INSPECT = "import sys, types; sys.modules['inspect'] = types.ModuleType('inspect')\n"


def importing(modules: Sequence[str]) -> str:
    """Python source that imports `modules` (with `inspect` deferred as mcpctl.lean defers it), or `pass`."""
    if not modules:
        return "pass"
    return _DEFER_INSPECT + "".join(f"import {name}\n" for name in modules)


def stdlib_of(argv: Sequence[str], env: dict[str, str] | None = None) -> list[str]:
    """The stdlib modules (`sys.stdlib_module_names`, submodules too) that the Python command `argv` (its
    interpreter's options first) imports beyond a bare interpreter's, in import order, read from
    `-X importtime`. A module mcpctl.lean defers (`inspect`) is not imported, so it is not listed."""

    def imported(command: Sequence[str], env: dict[str, str] | None) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", *command], env=env, capture_output=True, text=True, check=False
        )
        lines = (
            line.rpartition("|")[2].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
        )
        stdlib = (name for name in lines if name.partition(".")[0] in sys.stdlib_module_names)
        return [name for name in dict.fromkeys(stdlib) if _exists(name)]  # not the tries that failed (nt, _winapi)

    bare = set(imported(["-c", "pass"], c.bench_env()))
    return [name for name in imported(argv, env or c.bench_env()) if name not in bare]


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def interpreter_wall(runs: int, imports: Sequence[str] = ()) -> list[float]:
    """Wall times of `python -c pass`, or of a python importing only `imports` (after one untimed warm-up)."""
    argv = [sys.executable, "-c", importing(imports)]
    subprocess.run(argv, env=c.bench_env(), check=True)
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(argv, env=c.bench_env(), check=True)
        samples.append(time.perf_counter() - began)
    return samples


def idle_python_memory(imports: Sequence[str] = ()) -> c.Memory:
    """USS and RSS of `python -c pass`'s interpreter, or of one that imported only `imports`, kept alive
    idling on stdin (after one untimed run, which compiles what the bytecode cache lacks: compiling
    leaves its memory behind)."""
    subprocess.run([sys.executable, "-c", importing(imports)], env=c.bench_env(), check=True)  # bytecode written
    code = importing(imports) + "\nimport sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()"
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
