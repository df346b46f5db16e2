"""Signals and children: the shim's handlers, reaping, names for exit signals, adopting orphans (Linux)."""

from __future__ import annotations

import functools
import os
import select
import selectors
import signal
import sys
import time
from collections.abc import Callable, Iterator

_STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# Signals whose default would end the shim without a word, leaving its server unattended: a stray one
# (logrotate's SIGUSR1 by process name, say) is not a stop. Handled, not ignored: a handler, unlike
# SIG_IGN, is reset by exec, so the server still gets the default.
_STRAYS = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)
_early_stop: list[int] = []  # stop signals that came before `install`
_adopting: list[bool] = []  # [True] once this process is a subreaper
_wake: list[int] = []  # the wakeup pipe's read end, once `install` made it
# Set by SIGCHLD once `install` ran: a child may have ended since the last reap. Until then, every
# `reaped` asks the kernel; after, only when this says so (not two waitpid calls per MCP message).
_child_news = [True]


def catch_early() -> None:
    """Remember a stop signal from now until `install` takes over, instead of dying of it.

    Called before the instance lock is taken: `mcpctl stop` signals whoever holds the lock when it
    cannot reach the shim's socket, and a shim killed in the moment after locking would die without a
    word (its `start` reports "exited without reporting" instead of "stopped before it became ready").
    """
    for sig in _STOPS:
        signal.signal(sig, lambda signum, _frame: _early_stop.append(signum))


def install(selector: selectors.BaseSelector, on_stop: Callable[[], None]) -> None:
    """SIGTERM, SIGINT and SIGQUIT ask for a stop; SIGUSR1, SIGUSR2 and SIGALRM are stray (see _STRAYS);
    every signal wakes the selector through a wakeup pipe.

    A handler only calls `on_stop` (which sets a flag): the loop acts on it. A stop signal caught
    early (see `catch_early`) is acted on now.
    """
    for sig in _STOPS:
        signal.signal(sig, lambda _signum, _frame: on_stop())
    if _early_stop:
        on_stop()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal: a hangup is not ours to act on
    for sig in _STRAYS:
        signal.signal(sig, _stray)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)  # wakes the selector for every signal
    signal.signal(signal.SIGCHLD, _on_child)
    _wake[:] = [wake_read]
    selector.register(wake_read, selectors.EVENT_READ, lambda _mask: _drain(wake_read))


def _stray(_signum: int, _frame: object) -> None:
    """Nothing to do: the wakeup pipe has woken the loop, which goes on."""


def _on_child(_signum: int, _frame: object) -> None:
    _child_news[0] = True


def pause(timeout: float, also: tuple[int, Callable[[], None]] | None = None) -> None:
    """Sleep until a signal comes (a child's end, a stop) or `timeout` seconds pass; polls every 10 ms
    before `install`. `also`: a descriptor that wakes it too, and what to call when it is readable."""
    if not _wake:
        time.sleep(min(timeout, 0.01))
        return
    watched = _wake if also is None else [_wake[0], also[0]]
    ready = select.select(watched, [], [], max(0.0, timeout))[0]
    if _wake[0] in ready:
        _drain(_wake[0])
    if also is not None and also[0] in ready:
        also[1]()


def reaped() -> Iterator[tuple[int, int]]:
    """Reap every child that has ended (the server, and whatever the subreaper inherited): (pid, status)."""
    if _wake and not _child_news[0]:
        return
    _child_news[0] = False  # before asking: a SIGCHLD from now on is news for the next call
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
    prctl = libc_prctl()
    if prctl is None:
        return False
    pr_set_child_subreaper = 36
    adopting = prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    _adopting[:] = [adopting]
    return adopting


@functools.cache
def libc_prctl() -> Callable[..., int] | None:
    """libc's prctl (Linux), loaded once: ctypes costs ~0.5 MB and a few ms, so a brood loads it before it
    forks, and all its shims share it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def nothing_below() -> bool:
    """True when, as a subreaper, this process has no child at all, running or not yet reaped: then it
    has no descendant either, since every orphan of its tree is re-parented to it. One system call
    instead of a pass over /proc (fifty shims stopping at once made ~17,000 reads of it)."""
    if not _adopting:
        return False
    try:  # WNOWAIT: a child that has ended stays for `reaped`, with its status
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return False
