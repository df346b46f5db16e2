"""Signals and children: the shim's handlers, reaping, names for exit signals, adopting orphans (Linux)."""

from __future__ import annotations

import os
import selectors
import signal
import sys
from collections.abc import Callable, Iterator


def install(selector: selectors.BaseSelector, on_stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT ask for a stop; every signal wakes the selector through a wakeup pipe.

    A handler only calls `on_stop` (which sets a flag): the loop acts on it.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: on_stop())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal: a hangup is not ours to act on
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector through the wakeup fd
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    selector.register(wake_read, selectors.EVENT_READ, lambda _mask: _drain(wake_read))


def reaped() -> Iterator[tuple[int, int]]:
    """Reap every child that has ended (the server, and whatever the subreaper inherited): (pid, status)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def become_subreaper() -> bool:
    """On Linux, adopt orphaned descendants (they are re-parented to us, and we reap them)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_child_subreaper = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
