"""The shim in the foreground (`mcpctl run NAME`): for a container's entrypoint or a systemd service.

The same shim as the detached one, with the same record, log file, sockets and instance lock, so
`status`, `logs` and `connect` see it; what differs:

- Its lines (the server's stderr and the shim's own) go to the log file and to its stderr as well,
  as the log file has them or, with `--log-format json`, one JSON object a line.
- Nobody reads a report pipe: stdout is let go (the server's stdout is the MCP session, never shown).
- It tells systemd how it goes (`notify`): READY=1 once the server answered its handshake,
  STOPPING=1 when it stops, WATCHDOG=1 every half of $WATCHDOG_USEC from its own loop.
- Its exit code says how it ended (`exit_code`), for a service manager's restart rules.

As PID 1 it is the reaper of every orphan already: the loop reaps any child pid (`signals.reaped`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mcpctl.constants import ExitCode
from mcpctl.contract import Report
from mcpctl.errors import Failure
from mcpctl.hints import Any
from mcpctl.logfile import Line, LogWriter
from mcpctl.privdir import open_own
from mcpctl.shim.loop import Finished, Shim
from mcpctl.shim.notify import Notifier
from mcpctl.states import ServerState

LOG_FORMATS = ("text", "json")


class EchoingLog(LogWriter):
    """The server's log (on fd 2), with every line also written to `echo_fd` (the shim's real stderr)."""

    def __init__(self, path: Path, max_bytes: int, backups: int, echo_fd: int, fmt: str, name: str) -> None:
        super().__init__(path, max_bytes, backups)
        self.echo_fd, self.fmt, self.name = echo_fd, fmt, name

    def write(self, lines: list[str], ours: bool = False) -> None:
        super().write(lines, ours)
        import json
        import time

        now = time.time()
        shown = [Line(now, ours, line) for line in lines]
        text = "".join(
            (json.dumps(line.to_json(self.name)) if self.fmt == "json" else line.render()) + "\n" for line in shown
        )
        with contextlib.suppress(OSError):
            os.write(self.echo_fd, text.encode("utf-8", "replace"))


def take_terminal(log_path: Path, max_bytes: int, backups: int, fmt: str, name: str) -> EchoingLog:
    """Keep the real stderr for echoing; make fd 2 the log file (as a detached shim has it); let stdout go."""
    echo_fd = os.dup(2)  # not inheritable: the server never gets it
    log_fd = open_own(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(log_fd, 2)
    os.dup2(devnull, 1)
    os.close(log_fd)
    os.close(devnull)
    return EchoingLog(log_path, max_bytes, backups, echo_fd, fmt, name)


class NoReports:
    """In the foreground nobody waits on a report pipe."""

    def new_run(self, run: Any) -> None:
        pass

    def send(self, event: Report, record: Any) -> None:
        pass


def exit_code(final: ServerState) -> int:
    """0: stopped (a signal, `mcpctl stop`, or a clean end the policy does not restart); 4: it gave up."""
    return ExitCode.OK if final == ServerState.STOPPED else ExitCode.START_FAILED


class ForegroundShim(Shim):
    """A shim that speaks systemd's notify protocol and exits with a code that means something."""

    def __init__(self, *args: Any, notifier: Notifier | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("reports", NoReports())
        super().__init__(*args, **kwargs)
        self.notifier = notifier or Notifier()
        self.watchdog_at = self.clock.monotonic()

    def _enter(self, state: ServerState, **kwargs: Any) -> None:
        super()._enter(state, **kwargs)
        flags = {ServerState.READY: {"READY": "1"}, ServerState.STOPPING: {"STOPPING": "1"}}.get(state, {})
        self.notifier.send(**flags, STATUS=f"{self.spec.name}: {state}")

    def step(self) -> None:
        super().step()
        interval = self.notifier.watchdog_interval
        if interval is not None and self.clock.monotonic() >= self.watchdog_at:
            self.notifier.send(WATCHDOG="1")
            self.watchdog_at = self.clock.monotonic() + interval

    def _next_wakeup(self) -> float:
        later = super()._next_wakeup()
        return later if self.notifier.watchdog_interval is None else min(later, self.watchdog_at)

    def finish(self, final: ServerState, failure: Failure | None) -> Finished:
        if self.record.state != ServerState.STOPPING:
            self.notifier.send(STOPPING="1")
        super().finish(final, failure)
        self.finished = Finished(exit_code(final))
        return self.finished
