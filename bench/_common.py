"""Shared helpers for the bench scripts: a private mcpctl sandbox, timing, statistics and a plain table.

Not a benchmark itself. Each bench script puts its own folder first on sys.path (Python does that when
it runs `python bench/NAME.py`), so `import _common` finds this file.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psutil

REPO = Path(__file__).resolve().parent.parent
DEMO_SERVER = REPO / "examples" / "demo_server.py"
TINY_SERVER = REPO / "bench" / "tiny_server.py"


# PYTHONDONTWRITEBYTECODE=1 in the environment makes every mcpctl and shim process compile mcpctl's
# sources again (an editable install has no .pyc files to fall back on): ~15 ms per process that users
# of a normal install never pay. Unless BENCH_INHERIT_ENV=1, the children of a bench get bytecode caching
# back, written under a private temporary PYTHONPYCACHEPREFIX (never into the repo), warmed up untimed.
INHERIT_ENV = os.environ.get("BENCH_INHERIT_ENV") == "1"
_pycache_prefix: Path | None = None


def bench_env() -> dict[str, str]:
    """The environment for every process a bench starts (mcpctl, servers, reference interpreters)."""
    global _pycache_prefix  # noqa: PLW0603 - one cache dir per bench process, made on first use
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPCTL_")}
    if INHERIT_ENV or not env.get("PYTHONDONTWRITEBYTECODE"):
        return env
    if _pycache_prefix is None:
        _pycache_prefix = Path(tempfile.mkdtemp(prefix="mcb-pyc-"))
        atexit.register(shutil.rmtree, _pycache_prefix, ignore_errors=True)
    del env["PYTHONDONTWRITEBYTECODE"]
    env["PYTHONPYCACHEPREFIX"] = str(_pycache_prefix)
    return env


def env_note() -> str:
    if INHERIT_ENV:
        return "environment inherited as is (BENCH_INHERIT_ENV=1)"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return "PYTHONDONTWRITEBYTECODE overridden: bytecode cached in a private PYTHONPYCACHEPREFIX"
    return "bytecode caching as inherited"


def install_note() -> str:
    """How mcpctl is installed here: the default editable install's import finder runs at every interpreter
    start-up (~20 ms here, pathlib, re and urllib), which a `pip install .` never pays, so it skews every
    figure and reference."""
    finders = [m for m in sys.modules if m.startswith("__editable__") and m.endswith("_finder")]
    if finders:
        return (
            "an editable install's import finder runs in every interpreter (~20 ms each, which a `pip install .`"
            " never pays): reinstall with `pip install -e . --config-settings editable_mode=compat`"
        )
    return "interpreters start as in a `pip install .` (no editable import finder)"


def mcpctl_argv() -> list[str]:
    """The `mcpctl` console script installed next to this Python (what a user runs), else `python -m mcpctl`."""
    script = Path(sys.executable).parent / "mcpctl"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("mcpctl")
    return [found] if found else [sys.executable, "-m", "mcpctl"]


def toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string for everything we write (paths, names).
    return json.dumps(value)


def server_table(
    name: str, script: Path, startup_timeout: float = 30, stop_timeout: float = 5, command: str = sys.executable
) -> str:
    return (
        f"[servers.{name}]\n"
        f"command = {toml_string(command)}\n"
        f"args = [{toml_string(str(script))}]\n"
        f"startup_timeout = {startup_timeout}\n"
        f"stop_timeout = {stop_timeout}\n"
    )


class Box:
    """A command line (argv, env) run against something private; `cleanup()` runs when the `with` block ends.

    SIGTERM and SIGHUP are turned into SystemExit while the box is open, so the cleanup runs for them too.
    """

    tool = "mcpctl"  # the command's name in warnings

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.env = env
        self._old_handlers: dict[int, Any] = {}

    def __enter__(self) -> Self:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, _exit_on_signal)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig in self._old_handlers:
            signal.signal(sig, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        try:
            self.cleanup()
        finally:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, handler)

    def cleanup(self) -> None:
        raise NotImplementedError

    def run(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=check
        )

    def timed(
        self, *args: str, timeout: float = 120, ok: tuple[int, ...] = (0,)
    ) -> tuple[float, subprocess.CompletedProcess[str]]:
        """Wall time in seconds of one `TOOL ARGS...`, and its result (an exit code not in `ok` is reported)."""
        began = time.perf_counter()
        result = self.run(*args, timeout=timeout)
        elapsed = time.perf_counter() - began
        if result.returncode not in ok:
            output = (result.stderr.strip() or result.stdout.strip())[:300]
            print(f"warning: `{self.tool} {' '.join(args)}` exited {result.returncode}: {output}", file=sys.stderr)
        return elapsed, result

    def sample(self, *args: str, runs: int = 10, ok: tuple[int, ...] = (0,)) -> list[float]:
        """Wall times of `runs` runs of `TOOL ARGS...`, after one untimed warm-up."""
        self.run(*args)
        return [self.timed(*args, ok=ok)[0] for _ in range(runs)]


class Sandbox(Box):
    """A private state dir (MCPCTL_HOME) and config file; on exit: `stop --all`, a leftover sweep, rm -rf."""

    def __init__(self, servers: Iterable[tuple[str, Path]], command: str = sys.executable) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="mcb-"))
        self.config_dir = Path(tempfile.mkdtemp(prefix="mcb-cfg-"))
        self.config = self.config_dir / "mcpctl.toml"
        tables = (server_table(n, s, command=command) for n, s in servers)
        self.config.write_text("\n".join(tables), encoding="utf-8")
        env = bench_env()
        env["MCPCTL_HOME"] = str(self.home)
        super().__init__([*mcpctl_argv(), "-f", str(self.config)], env)
        self.leftovers: list[str] = []

    def cleanup(self) -> None:
        try:
            self.run("stop", "--all", timeout=120)
        except subprocess.TimeoutExpired:
            print("warning: `mcpctl stop --all` did not finish within 120 s", file=sys.stderr)
        finally:
            self.leftovers = sweep_leftovers(str(self.home))
            for line in self.leftovers:
                print(f"warning: process left behind after `mcpctl stop --all`, ended it: {line}", file=sys.stderr)
            shutil.rmtree(self.home, ignore_errors=True)
            shutil.rmtree(self.config_dir, ignore_errors=True)

    def status_json(self, *names: str) -> list[dict[str, Any]]:
        result = self.run("status", "--json", *names)
        servers: list[dict[str, Any]] = json.loads(result.stdout)["servers"]
        return servers

    def ready_count(self) -> int:
        """How many servers `status --json` reports ready (-1 when its output is not the expected JSON)."""
        try:
            return sum(1 for s in self.status_json() if s.get("state") == "ready")
        except (ValueError, KeyError):
            return -1

    def shim_pids(self) -> list[int]:
        return [s["shim_pid"] for s in self.status_json() if s.get("shim_pid")]


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def tagged(value: str, key: str = "MCPCTL_HOME") -> list[psutil.Process]:
    """The live (non-zombie) processes, other than this one, whose environment carries key=value."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(key) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def sweep_leftovers(value: str, key: str = "MCPCTL_HOME") -> list[str]:
    """End (and describe) any process whose environment carries key=value: nothing should remain."""
    found = tagged(value, key)
    described = [f"pid {p.pid}: {' '.join(p.info['cmdline'] or [])[:160]}" for p in found]
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(found, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return described


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p90(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=10, method="inclusive")[-1]


@dataclass(frozen=True)
class Memory:
    """Summed memory of some processes, in bytes (PSS is 0 where the platform has none)."""

    processes: int
    rss: int
    uss: int
    pss: int


def memory_of(pids: Iterable[int]) -> Memory:
    """RSS, USS and PSS summed over the processes that still exist (psutil memory_full_info)."""
    count = rss = uss = pss = 0
    for pid in pids:
        try:
            full = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        count, rss, uss, pss = count + 1, rss + full.rss, uss + full.uss, pss + getattr(full, "pss", 0)
    return Memory(count, rss, uss, pss)


def mb(size: float | None) -> str:
    return "-" if size is None else f"{size / (1024 * 1024):.1f} MB"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "?"
    return "ok" if value <= limit else "OVER"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}"


def header(title: str) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== {title} ==")
    print(f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} cpu(s), load average {load}")
    print(f"mcpctl: {' '.join(mcpctl_argv())}, tree {git_revision()}")
    print(f"env: {env_note()}")
    print(f"install: {install_note()}")
    print(f"cache: {cache_note()}")
    print()


def cache_note() -> str:
    """Whether mcpctl's compiled data-class methods (mcpctl/lean.py) are kept, and how many classes are:
    an empty cache costs the first commands ~10-17 ms each, the runs after it nothing."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and INHERIT_ENV:
        return "methods cache read, never written (PYTHONDONTWRITEBYTECODE)"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folders = list((Path(base) / "mcpctl").glob("methods.*"))
    kept = sum(len(list(folder.glob("*.bin"))) for folder in folders)
    return f"methods cache {Path(base) / 'mcpctl'}: {kept} classes kept (the untimed warm-up runs fill it)"
