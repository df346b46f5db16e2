"""What the shim writes down: its server's state record, the events journal, and the report pipe.

While a shim lives it is the only writer of its server's state record and events. A write that fails
(a full disk, a quota, a read-only remount) never ends supervision: the record in memory goes on, says
what failed (`write_error`, answered to `mcpctl/status`), the log says it once, and the next write (at
least every RETRY_WRITE_AFTER seconds) tries again. A final record that cannot be written is logged as
lost: the shim ends, and the live record left on disk reads as a shim gone without one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mcpctl.constants import STDERR_TAIL_LINES
from mcpctl.contract import Report
from mcpctl.errors import StateDirError
from mcpctl.events import append_event
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.logfile import server_lines
from mcpctl.paths import Paths
from mcpctl.shim.log import log
from mcpctl.state import CorruptState, StateRecord, read_record, write_record
from mcpctl.states import LIVE

if TYPE_CHECKING:
    from mcpctl.shim.run import Run

# What a new run forgets of the last one (a person's start also its error: it is a new attempt); what
# an end forgets unless it is a crash loop's.
NO_COOLDOWN = dict.fromkeys(("cooldown_until", "cooldown_until_mono"))
FORGOTTEN_BY_A_RUN = {**dict.fromkeys(("ready_at", "health", "metrics", "last_exit_code")), **NO_COOLDOWN}
FORGOTTEN_BY_A_START = {**FORGOTTEN_BY_A_RUN, "last_error": None}
RETRY_WRITE_AFTER = 1.0  # seconds: how soon an unsaved record is tried again when nothing else writes it


class Ledger:
    """The record as it stands (in memory and on disk) and the events journal beside it."""

    def __init__(self, paths: Paths, name: str, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.state_file = paths.state_file(name)
        self.events_file = paths.events_file(name)
        self.record = StateRecord(name=name)
        self.unsaved_since: float | None = None  # monotonic: when the record on disk fell behind

    def take_over(self, **changes: Any) -> None:
        """Start from the record a previous shim left (a fresh one if there is none, or it is damaged)."""
        try:
            previous = read_record(self.state_file)
        except CorruptState as exc:
            log(f"previous state unreadable, starting a fresh record: {exc}")
            previous = None
        self.record = (previous or self.record).but(**changes)

    def amend(self, **changes: Any) -> None:
        """Change the record in memory only: the next write saves it."""
        self.record = self.record.but(**changes)

    def write(self, event: str | None = None, details: Mapping[str, Any] | None = None, **changes: Any) -> None:
        """Change the record, save it, then append `event` (so a reader of the event finds the record)."""
        if changes:
            self.amend(**changes)
        self._save()
        if event is not None:
            self.event(event, details or {})

    def event(self, kind: str, details: Mapping[str, Any]) -> None:
        """Append one event; the record is saved by the write that follows."""
        if not append_event(self.events_file, kind, dict(details)):
            self._failed(f"cannot append to {self.events_file}")

    def retry(self) -> None:
        """Save a record that could not be saved, once RETRY_WRITE_AFTER has passed (called every turn)."""
        if self.unsaved_since is not None and self.monotonic() - self.unsaved_since >= RETRY_WRITE_AFTER:
            self._save()

    def _save(self) -> None:
        failing = self.record.write_error
        if failing is not None:
            self.record = self.record.but(write_error=None)  # what reaches the disk is a record whose writes work
        try:
            # A final record (the shim is done) takes the space of the live one it replaces, if it must:
            # left on disk after the shim is gone, that one says the shim was lost with its server.
            write_record(self.state_file, self.record, make_room=self.record.state not in LIVE)
        except StateDirError as exc:
            self.record = self.record.but(write_error=failing)
            if self.record.state in LIVE:
                self._failed(exc.message)
            else:  # the shim ends now: nothing tries it again (said even when live writes failed before)
                log(f"{exc.message}: the final record ({self.record.state}) is lost; status will say none was left")
                self.record = self.record.but(write_error=exc.message)
            return
        self.unsaved_since = None
        if failing is not None:
            log(f"writes work again (they failed: {failing})")

    def _failed(self, message: str) -> None:
        if self.record.write_error is None:  # once, not every turn of a full disk
            log(f"{message}; supervision goes on, the write is tried again")
            self.record = self.record.but(write_error=message)
        self.unsaved_since = self.monotonic()


class ReportPipe:
    """The shim's stdout, read by the CLI that started it: how the first start went, once; then closed."""

    def __init__(self, log_path: Path, fd: int = 1) -> None:
        """`log_path` is the server's log, where a failed start's last stderr lines are found."""
        self.log_path, self.fd = log_path, fd
        self.sent = False
        self.run: Run | None = None  # the current run: where its process's lines begin in the log

    def new_run(self, run: Run) -> None:
        self.run = run

    def send(self, event: Report, record: StateRecord) -> None:
        """Tell the CLI `event` (its record, and its stderr unless ready); after that, nobody listens."""
        if self.sent:
            return
        self.sent = True
        # The lines of the process whose end is reported: a run that spawned its server again (pinned after
        # the probe) quotes the second process only, not one crash's stderr twice.
        start = self.run.log_from if self.run is not None else 0
        tail = server_lines(self.log_path, start, STDERR_TAIL_LINES) if event != Report.READY else []
        with contextlib.suppress(OSError):
            say({"event": event, "record": record.to_json(), "stderr_tail": tail}, self.fd)
        # Let the pipe go: the CLI that read it may be gone, and nothing more is said on it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.fd)
        os.close(devnull)


def say(payload: Mapping[str, Any], fd: int = 1) -> None:
    """One JSON line on the report pipe."""
    os.write(fd, json.dumps(payload).encode() + b"\n")
