"""A shim started ahead of need, for `mcpctl start NAME`.

A shim's start-up (an interpreter and the shim's imports, ~110 ms here) used to follow the CLI's own
(its imports, the config, the environment, the state lock, ~150 ms). Now the entry point spawns the
shim's interpreter first thing, before it imports anything else, in a session of its own, and the two
start up side by side. It goes by a look at the command line (`for_argv`), a guess that the hot path's
parser then confirms: for any other command line, the shim is discarded. The early shim
waits on stdin for its spec (`mcpctl.shim.__main__`); when the CLI finds it needs no shim after all (the
server runs already, waits out a cooldown, or its environment is wrong), it closes that pipe and the
shim exits at once, having touched nothing. What that costs is the CPU of a start-up nobody waits for.

Imports nothing of mcpctl but its constants (and, without --home or $MCPCTL_HOME, the default state
dir's rule): it runs before the CLI's own imports.
"""

from __future__ import annotations

import contextlib
import os
import sys

from mcpctl.constants import ENV_HOME

# The global options that take a value (hot/options.py's GLOBAL, which a unit test holds this to).
VALUED = frozenset({"-f", "--config", "--home", "--project"})


def for_argv(argv: list[str]) -> Early | None:
    """An early shim for `mcpctl [GLOBAL OPTIONS] start NAME [OPTIONS]` (not --all), else None."""
    guessed = guess(argv)
    return spawn(*guessed) if guessed is not None else None


def guess(argv: list[str]) -> tuple[str, str] | None:
    """The server and the state dir of `mcpctl [GLOBAL OPTIONS] start NAME [OPTIONS]` (not --all)."""
    home, i = None, 0
    while i < len(argv) and argv[i].startswith("-"):
        flag, _, value = argv[i].partition("=")
        if flag in VALUED and not value:
            i += 1
            value = argv[i] if i < len(argv) else ""
        if flag == "--home":
            home = value
        i += 1
    words = argv[i:]
    if len(words) < 2 or words[0] != "start" or words[1].startswith("-") or "--all" in words or "-a" in words:
        return None
    home = home or os.environ.get(ENV_HOME)
    if home:  # as paths.chosen_home makes it, else hot/run.py finds another home and discards this shim
        home = os.path.join(os.getcwd(), os.path.expanduser(home)).rstrip("/") or "/"
    else:
        from mcpctl.paths import default_home

        home = str(default_home())
    return words[1].rsplit("/", 1)[-1], home


class Early:
    """An early shim, our child until we exit: the write end of its stdin, the read end of its reports."""

    __slots__ = ("home", "name", "pid", "report_fd", "spec_fd")

    def __init__(self, name: str, home: str, pid: int, spec_fd: int, report_fd: int) -> None:
        self.name, self.home, self.pid, self.spec_fd, self.report_fd = name, home, pid, spec_fd, report_fd

    def take(self) -> tuple[int, int] | None:
        """Its stdin and report pipe, for the launch that uses it (from then on they are that launch's);
        None once taken or discarded."""
        if self.spec_fd < 0:
            return None
        ends = self.spec_fd, self.report_fd
        self.spec_fd = self.report_fd = -1
        return ends

    def discard(self) -> None:
        """End it if it was not taken. It has touched nothing yet: killed, it is gone before we are, and
        nobody sees a shim that serves nothing. (Once taken, it is reparented when we exit.)"""
        if self.spec_fd < 0:
            return
        for fd in (self.spec_fd, self.report_fd):
            os.close(fd)
        self.spec_fd = self.report_fd = -1
        import signal  # here: most commands never discard one (the module's enums cost ~1.5 ms)

        with contextlib.suppress(OSError):  # ChildProcessError included
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)


def spawn(name: str, home: str) -> Early | None:
    """Start `python -m mcpctl.shim NAME` in a new session, waiting for its spec, with `home` (the state
    dir the flags and environment name; a config file may name another, and then it goes unused) in its
    environment as every process of ours has; None when that cannot be done here (the start then spawns
    its shim the usual way)."""
    try:
        spec_read, spec_write = os.pipe()
        report_read, report_write = os.pipe()
    except OSError:
        return None
    argv = [sys.executable, "-m", "mcpctl.shim", name]
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:  # pragma: no cover - runs in the forked child, which only ever execs or exits
        try:
            os.setsid()
            os.dup2(spec_read, 0)
            os.dup2(report_write, 1)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # until it has its spec: then its log
            os.chdir("/")
            os.execve(argv[0], argv, {**os.environ, ENV_HOME: home})
        finally:
            os._exit(127)
    os.close(spec_read)
    os.close(report_write)
    if pid < 0:
        os.close(spec_write)
        os.close(report_read)
        return None
    os.set_blocking(report_read, False)
    return Early(name, home, pid, spec_write, report_read)
