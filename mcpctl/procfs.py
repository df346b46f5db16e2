"""Process facts read straight from Linux's /proc, so a shim's steady state never loads psutil.

psutil costs every shim about 1 MB of private memory and ~60 ms of imports; a shim only needs a few
numbers about its own descendants. Every function here returns None where /proc cannot answer (macOS,
a process gone between two reads), and the callers then ask psutil, the portable path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

_PROC = "/proc"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_boot: list[float] = []
_looks: list[dict[int, bytes] | None] = []  # within `one_look`: every readable environment, once read


_available: list[bool] = []


def available() -> bool:
    """Whether /proc answers here (looked at once per process)."""
    if not _available:
        _available.append(os.path.isfile(f"{_PROC}/self/stat"))
    return _available[0]


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on: the command name, which may hold spaces, is cut off."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    end = raw.rfind(b")")
    return raw[end + 2 :].decode("ascii", "replace").split() if end > 0 else None


def state(pid: int) -> str | None:
    """The kernel's one-letter state of `pid` ("R", "S", "T" stopped by a signal, "t" by a tracer...)."""
    fields = stat_fields(pid)
    return fields[0] if fields else None


def boot_time() -> float | None:
    if not _boot:
        try:
            with open(f"{_PROC}/stat", "rb") as handle:
                line = next(x for x in handle if x.startswith(b"btime "))
        except (OSError, StopIteration):
            return None
        _boot.append(float(line.split()[1]))
    return _boot[0]


def create_time(pid: int) -> float | None:
    """When `pid` started, by the same formula as psutil (start ticks / CLK_TCK + boot time)."""
    fields = stat_fields(pid)
    return None if fields is None else started(fields)


def started(fields: list[str]) -> float | None:
    """The create time in a process's `stat_fields`."""
    booted = boot_time()
    return None if booted is None else float(fields[19]) / _TICKS + booted


def descendants(pid: int) -> list[int] | None:
    """Every process below `pid` (children, grandchildren, ...): from the kernel's lists of each thread's
    children where it keeps them (CONFIG_PROC_CHILDREN: a few reads per process of the tree), else from
    one pass over every /proc/PID/stat (a few hundred reads on a desktop, ~3 ms of a shim's sample)."""
    if _children_listed(pid):
        found, todo = [], [pid]
        while todo:
            below = _children(todo.pop())
            found += below
            todo += below
        return found
    try:
        entries = [int(e) for e in os.listdir(_PROC) if e.isdigit()]
    except OSError:
        return None
    children: dict[int, list[int]] = {}
    for entry in entries:
        fields = stat_fields(entry)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(entry)
    found, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, ()))
    return found


_listed: list[bool] = []  # whether this kernel lists children (/proc/PID/task/TID/children), once known


def _children_listed(pid: int) -> bool:
    if not _listed:
        if not os.path.isdir(f"{_PROC}/{pid}/task/{pid}"):
            return False  # `pid` is gone, or no /proc: nothing is learned of the kernel
        _listed.append(os.path.isfile(f"{_PROC}/{pid}/task/{pid}/children"))
    return _listed[0]


def _children(pid: int) -> list[int]:
    """The children of every thread of `pid` (each thread's are listed apart); none once it is gone."""
    found = []
    try:
        threads = os.listdir(f"{_PROC}/{pid}/task")
    except OSError:
        return []
    for thread in threads:
        try:
            with open(f"{_PROC}/{pid}/task/{thread}/children", "rb") as handle:
                found += [int(child) for child in handle.read().split()]
        except (OSError, ValueError):
            continue
    return found


class Usage:
    """One process's numbers for a resource sample (None from `of` when the process is gone)."""

    __slots__ = ("cpu_s", "fds", "rss", "started", "threads", "zombie")

    def __init__(self, fields: list[str], fds: int) -> None:
        self.zombie = fields[0] == "Z"
        self.cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        self.threads, self.started, self.rss = int(fields[17]), fields[19], int(fields[21]) * _PAGE
        self.fds = fds

    @classmethod
    def of(cls, pid: int) -> Usage | None:
        fields = stat_fields(pid)
        if fields is None:
            return None
        try:
            fds = len(os.listdir(f"{_PROC}/{pid}/fd"))
        except OSError:
            fds = 0
        return cls(fields, fds)


def environ_holders(entry: bytes) -> list[int] | None:
    """The pids whose environment holds `entry` (b"NAME=value") exactly; None when /proc is not there."""
    if _looks and _looks[-1] is None:
        _looks[-1] = _environs()
    environs = _looks[-1] if _looks else _environs()
    if environs is None:
        return None
    needle = b"\0" + entry + b"\0"
    return [pid for pid, held in environs.items() if needle in held]


@contextmanager
def one_look() -> Iterator[None]:
    """Within it, environ_holders reads every environment once, on its first call, and answers from that
    (a start of fifty servers looks for the leftovers of fifty instances: one pass over /proc, not fifty).
    For searches of what an earlier instance left, which nothing started within can add to."""
    _looks.append(None)
    try:
        yield
    finally:
        _looks.pop()


def _environs() -> dict[int, bytes] | None:
    try:
        entries = [e for e in os.listdir(_PROC) if e.isdigit()]
    except OSError:
        return None
    found = {}
    for entry_pid in entries:
        try:
            with open(f"{_PROC}/{entry_pid}/environ", "rb") as handle:
                found[int(entry_pid)] = b"\0" + handle.read() + b"\0"
        except OSError:  # gone, or not ours to read
            continue
    return found


def started_at(pid: int) -> float | None:
    """`create_time`, or psutil's where there is no /proc (imported only then)."""
    if available():
        return create_time(pid)
    from mcpctl import process

    return process.create_time(pid)


def booted_at() -> float:
    """`boot_time`, or psutil's where there is no /proc (imported only then)."""
    booted = boot_time() if available() else None
    if booted is not None:
        return booted
    from mcpctl import process

    return process.boot_time()
