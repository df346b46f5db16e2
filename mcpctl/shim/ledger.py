"""What the shim writes down: its server's state record, the events journal, and the report pipe.

While a shim lives it is the only writer of its server's state record and events.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpctl.constants import STDERR_TAIL_LINES
from mcpctl.contract import Report
from mcpctl.events import append_event
from mcpctl.logfile import server_lines
from mcpctl.paths import Paths
from mcpctl.shim.log import log, log_size
from mcpctl.state import CorruptState, StateRecord, read_record, write_record


class Ledger:
    """The record as it stands (in memory and on disk) and the events journal beside it."""

    def __init__(self, paths: Paths, name: str) -> None:
        self.state_file = paths.state_file(name)
        self.events_file = paths.events_file(name)
        self.record = StateRecord(name=name)

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
        write_record(self.state_file, self.record)
        if event is not None:
            self.event(event, details or {})

    def event(self, kind: str, details: Mapping[str, Any]) -> None:
        """Append one event; the record is saved by the write that follows."""
        append_event(self.events_file, kind, dict(details))


class ReportPipe:
    """The shim's stdout, read by the CLI that started it: how the first start went, once; then closed."""

    def __init__(self, log_path: Path, fd: int = 1) -> None:
        """`log_path` is the server's log, where a failed start's last stderr lines are found."""
        self.log_path, self.fd = log_path, fd
        self.sent = False
        self.log_offset = 0  # where the current run's lines begin in the log

    def new_run(self) -> None:
        self.log_offset = log_size()

    def send(self, event: Report, record: StateRecord) -> None:
        """Tell the CLI `event` (its record, and its stderr unless ready); after that, nobody listens."""
        if self.sent:
            return
        self.sent = True
        tail = server_lines(self.log_path, self.log_offset, STDERR_TAIL_LINES) if event != Report.READY else []
        with contextlib.suppress(OSError):
            say({"event": event, "record": record.to_json(), "stderr_tail": tail}, self.fd)
        # Let the pipe go: the CLI that read it may be gone, and nothing more is said on it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.fd)
        os.close(devnull)


def say(payload: Mapping[str, Any], fd: int = 1) -> None:
    """One JSON line on the report pipe."""
    os.write(fd, json.dumps(payload).encode() + b"\n")
