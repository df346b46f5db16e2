"""Processes by identity: (pid, create time) pairs, instance tags, and ending whole trees."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Callable, Iterable

from mcpctl import procfs
from mcpctl.constants import ENV_INSTANCE, ENV_TENANT
from mcpctl.hints import TYPE_CHECKING

if TYPE_CHECKING:
    import psutil

# psutil is imported by the functions that need it: `status` looks at every server through /proc alone.

# psutil's create_time has 10 ms resolution and is derived from the boot time: compare loosely.
_CREATE_TIME_TOLERANCE = 0.05


def create_time(pid: int) -> float | None:
    created = procfs.create_time(pid)  # the same figure as psutil's, without its cost
    if created is not None:
        return created
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def boot_time() -> float:
    """When the machine booted: monotonic times stored by another process are only valid within one boot."""
    booted = procfs.boot_time()
    if booted is not None:
        return booted
    import psutil

    return float(psutil.boot_time())


def live_pid(pid: int | None, created: float | None) -> int | None:
    """`pid` if it is still the process created at `created` (same_process's answer, from /proc alone
    on Linux); None if it is gone, a zombie, or the pid now names another process."""
    if not pid or created is None:
        return None
    if not procfs.available():
        proc = same_process(pid, created)
        return proc.pid if proc else None
    fields = procfs.stat_fields(pid)  # one read for both the state and the create time
    started = None if fields is None else procfs.started(fields)
    if fields is None or fields[0] == "Z" or started is None or abs(started - created) > _CREATE_TIME_TOLERANCE:
        return None
    return pid


def same_process(pid: int | None, created: float | None) -> psutil.Process | None:
    """The process `pid` if it is still the one created at `created`; None if it is gone or reused."""
    import psutil

    if not pid or created is None:
        return None
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - created) > _CREATE_TIME_TOLERANCE:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def tagged(instance_id: str, *, exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """Live processes of this user whose environment carries MCPCTL_INSTANCE=instance_id."""
    candidates = _candidates(instance_id)
    if not candidates:
        return []  # the usual answer (nothing left behind), found without psutil
    import psutil

    skip = {os.getpid(), *exclude}
    uid = os.getuid()
    found = []
    for proc in candidates:
        if proc.pid in skip or proc.info["uids"] is None or proc.info["uids"].real != uid:
            continue
        try:
            if proc.environ().get(ENV_INSTANCE) == instance_id and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def tree(instance_id: str) -> list[psutil.Process]:
    """This process's descendants and every process tagged with `instance_id` (which may have left the
    tree: a daemon). Nothing, the usual answer once a server has exited, is found in /proc alone."""
    below = procfs.descendants(os.getpid())
    holders = procfs.environ_holders(f"{ENV_INSTANCE}={instance_id}".encode()) if below == [] else None
    if holders is not None and set(holders) <= {os.getpid()}:
        return []
    import psutil

    procs = {p.pid: p for p in tagged(instance_id)}
    with contextlib.suppress(psutil.Error):
        for p in psutil.Process().children(recursive=True):
            procs.setdefault(p.pid, p)
    return list(procs.values())


def tenant_of(proc: psutil.Process) -> str:
    """The client whose own server process `proc` is (share = "per-client"); "" for the shim's own."""
    import psutil

    try:
        return str(proc.environ().get(ENV_TENANT, ""))
    except (psutil.Error, OSError):  # gone, or not ours to read: no client's process then
        return ""


def _candidates(instance_id: str) -> list[psutil.Process]:
    """Where the tag may be: on Linux the few pids one cheap pass over /proc finds (psutil then checks
    only those: `stop --all` looks once per server, and psutil costs ~70 ms a pass on a busy machine);
    elsewhere every process."""
    pids = procfs.environ_holders(f"{ENV_INSTANCE}={instance_id}".encode())
    if pids == []:
        return []
    import psutil

    if pids is None:
        return list(psutil.process_iter(["uids"]))
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.info = {"uids": proc.uids()}
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        procs.append(proc)
    return procs


def signal_all(procs: Iterable[psutil.Process], sig: int) -> None:
    import psutil

    for proc in procs:
        # psutil checks that the pid was not reused before it signals.
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
            proc.send_signal(sig)


def frozen(pid: int) -> bool:
    """Whether `pid` is stopped (SIGSTOP, a shell's job control, a tracer): it answers nothing until continued."""
    found = procfs.state(pid)
    if found is not None or procfs.available():
        return found in ("T", "t")
    import psutil

    try:
        return psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def signal_if_running(pid: int, module: str, sig: int) -> None:
    """Signal `pid`, but only if it runs `python -m MODULE` (a recycled pid is someone else's process)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if module in " ".join(proc.cmdline()):
            proc.send_signal(sig)
    except (psutil.Error, OSError):
        pass


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_holder(pid: int, holds: Callable[[], int | None], sig: int) -> bool | None:
    """Signal `pid` only while it is the process `holds()` names (the holder of a lock), through a
    pidfd: opened first, then the holder checked, so a pid recycled in between is never signalled.
    True: signalled; False: nobody holds it now (gone); None: not done, because this cannot be done
    here (not Linux 5.3+) or another process holds it now."""
    return signal_holders([(pid, holds)], sig)[0]


def signal_holders(
    targets: list[tuple[int, Callable[[], int | None]]], sig: int, wake: bool = False
) -> list[bool | None]:
    """`signal_holder` for each (pid, holds) of `targets`: every pidfd opened and every holder checked
    first, then the signals sent back to back. Sent one by one between the checks, each woken shim
    took the CPU the asker needed to ask the next: fifty took 12-84 ms. `wake`: each also gets SIGCONT,
    so one stopped by SIGSTOP (or a shell's job control) acts on `sig` now instead of when the caller's
    patience ends (as systemd follows its stop signal with SIGCONT)."""
    results: list[bool | None] = [None] * len(targets)
    held: list[tuple[int, int]] = []  # (index, pidfd) of those to signal
    opened: list[int] = []
    try:
        for index, (pid, holds) in enumerate(targets):
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                results[index] = False if holds() is None else None
                continue
            except (AttributeError, OSError):
                continue
            opened.append(fd)
            try:
                holder = holds()
            except OSError:
                continue
            if holder == pid:
                held.append((index, fd))
            elif holder is None:
                results[index] = False
        for index, fd in held:
            try:
                signal.pidfd_send_signal(fd, sig)
                results[index] = True
                if wake:
                    signal.pidfd_send_signal(fd, signal.SIGCONT)
            except OSError:
                pass
    finally:
        for fd in opened:
            os.close(fd)
    return results


def await_exit(pid: int, timeout: float) -> None:
    """Return once `pid` has exited, or after `timeout` seconds, whichever is first: by a pidfd on Linux
    (the kernel wakes us at the exit), else by sleeping `timeout`. The caller looks again after."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # gone already
    except (AttributeError, OSError):  # not Linux 5.3+, or not allowed: the old way
        time.sleep(timeout)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def wait_gone(
    procs: list[psutil.Process], timeout: float, reap: Callable[[], None] | None = None
) -> list[psutil.Process]:
    """Wait up to `timeout` for `procs` to exit (reaping with `reap` if we are their parent)."""
    deadline = time.monotonic() + timeout
    alive = procs
    while alive:
        if reap:
            reap()
        alive = [p for p in alive if _running(p)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return alive


def _running(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False


def end_processes(
    procs: list[psutil.Process], timeout: float, reap: Callable[[], None] | None = None
) -> list[psutil.Process]:
    """SIGTERM, wait up to `timeout`, SIGKILL what is left; return what survived even that."""
    if not procs:
        return []  # the usual case: and then psutil is not even imported
    signal_all(procs, signal.SIGTERM)
    alive = wait_gone(procs, timeout, reap)
    if alive:
        signal_all(alive, signal.SIGKILL)
        alive = wait_gone(alive, 2.0, reap)
    return alive
