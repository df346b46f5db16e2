"""Resource samples of a server's whole process tree, kept in a bounded journal.

Format: JSON lines in servers/NAME/metrics.jsonl, moved to metrics.jsonl.1 past MAX_BYTES, so at most
two files (~2 x 512 KiB, ~6000 samples: 16 h at the default 10 s). Appending is one write, a reader
tails it with one seek, and it needs nothing beyond the stdlib; SQLite would buy queries we do not
need at the cost of ~1 MB more in every shim.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from mcpctl import jsonl, procfs
from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass

MAX_BYTES = 512 * 1024
NOT_A_DURATION = N_("{text!r} is not a duration (use e.g. 30s, 10m, 2h, 1d)")


@dataclass(frozen=True)
class Sample(Record):
    """One resource sample of a server's whole process tree."""

    ts: float
    cpu_percent: float
    rss_bytes: int  # summed RSS: pages the tree's processes share are counted once per process
    memory_bytes: int  # what the tree really costs: summed PSS (shared pages split), else USS, else RSS
    memory_kind: str  # "pss", "uss" or "rss": the least precise figure any process gave
    fds: int
    threads: int
    processes: int
    zombies: tuple[int, ...]
    ping_latency_ms: float | None
    error_rate: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": round(self.ts, 3),
            "cpu_percent": round(self.cpu_percent, 1),
            "rss_bytes": self.rss_bytes,
            "memory_bytes": self.memory_bytes,
            "memory_kind": self.memory_kind,
            "fds": self.fds,
            "threads": self.threads,
            "processes": self.processes,
            "zombies": list(self.zombies),
            "ping_latency_ms": self.ping_latency_ms,
            "error_rate": self.error_rate,
        }


def new_sampler() -> Sampler:
    """On Linux a sampler that reads /proc itself, so a shim never loads psutil for its samples."""
    return ProcSampler() if procfs.available() else Sampler()


class Sampler:
    """Samples the shim's descendants (the server's tree, adopted orphans included), with psutil."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._known: dict[int, Any] = {}  # pid -> psutil.Process, so cpu_percent measures since last time

    def sample(self, ping_latency_ms: float | None, error_rate: float | None) -> Sample:
        psutil = self._psutil
        try:
            tree = psutil.Process().children(recursive=True)
        except psutil.Error:
            tree = []
        current = {p.pid: self._known.get(p.pid, p) for p in tree}
        self._known = current
        cpu = 0.0
        rss = memory = fds = threads = 0
        kinds: set[str] = set()
        zombies = []
        for proc in current.values():
            try:
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        zombies.append(proc.pid)
                        continue
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
                    used, kind = own_memory(proc)
                    memory, kinds = memory + used, kinds | {kind}
                    fds += proc.num_fds()
                    threads += proc.num_threads()
            except (psutil.Error, OSError):
                continue
        alive = len(current) - len(zombies)
        kind = next((k for k in ("rss", "uss") if k in kinds), "pss")
        return Sample(
            time.time(), cpu, rss, memory, kind, fds, threads, alive, tuple(zombies), ping_latency_ms, error_rate
        )


class ProcSampler(Sampler):
    """The same sample from /proc: CPU % as psutil's cpu_percent(None) (0 on a process's first sample)."""

    def __init__(self) -> None:
        self._cpu: dict[tuple[int, str], tuple[float, float]] = {}  # (pid, start) -> (cpu seconds, when)

    def sample(self, ping_latency_ms: float | None, error_rate: float | None) -> Sample:
        now, seen = time.monotonic(), {}
        cpu, rss, memory, fds, threads, zombies, kinds = 0.0, 0, 0, 0, 0, [], {"pss"}
        for pid in procfs.descendants(os.getpid()) or []:
            usage = procfs.Usage.of(pid)
            if usage is None:
                continue
            if usage.zombie:
                zombies.append(pid)
                continue
            key = (pid, usage.started)
            before_s, before_at = self._cpu.get(key, (usage.cpu_s, now))
            seen[key] = (usage.cpu_s, now)
            cpu += 100 * (usage.cpu_s - before_s) / (now - before_at) if now > before_at else 0.0
            pss = pss_of(pid)
            used, kind = (usage.rss, "rss") if pss is None else (pss, "pss")
            rss, memory, kinds = rss + usage.rss, memory + used, kinds | {kind}
            fds, threads = fds + usage.fds, threads + usage.threads
        self._cpu = seen
        kind = next((k for k in ("rss", "uss") if k in kinds), "pss")
        alive = len(seen)
        return Sample(
            time.time(), cpu, rss, memory, kind, fds, threads, alive, tuple(zombies), ping_latency_ms, error_rate
        )


def own_memory(proc: Any) -> tuple[int, str]:
    """A process's proportional set size (each shared page divided among its users: Chromium's processes
    share most of theirs), from /proc/PID/smaps_rollup; its USS where that is unreadable (macOS), else RSS."""
    pss = pss_of(proc.pid)
    if pss is not None:
        return pss, "pss"
    import psutil  # already loaded by the Sampler

    try:
        return int(proc.memory_full_info().uss), "uss"
    except (psutil.Error, OSError, AttributeError):  # access denied, or no USS on this platform
        return int(proc.memory_info().rss), "rss"


def pss_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def append(path: Path, sample: Sample) -> None:
    jsonl.append(path, sample.to_json(), MAX_BYTES)


def read(path: Path, since: float | None = None) -> list[dict[str, Any]]:
    return [s for s in jsonl.read(path) if since is None or s.get("ts", 0) >= since]


def parse_duration(text: str) -> float:
    """ "90", "90s", "10m", "2h", "1d" -> seconds; ValueError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(NOT_A_DURATION.format(text=text))
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * unit
