"""The shim's own lines in the server's log (the shim's stderr is that log file)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from mcpctl.logfile import MARK, LogWriter, escape, stamp
from mcpctl.shim.channels import Oversize

_log: LogWriter | None = None  # the server's log, once the shim knows its rotation settings


def use_log(writer: LogWriter) -> None:
    global _log  # noqa: PLW0603 - one log per shim process
    _log = writer


def retune_log(max_bytes: int, backups: int) -> None:
    if _log is not None:
        _log.max_bytes, _log.backups = max_bytes, backups


def log(message: str) -> None:
    """One line of the shim's own in the server's log (the shim's stderr is that log file)."""
    log_lines([message], ours=True)


def log_lines(lines: list[str], ours: bool = False) -> None:
    if _log is not None:
        _log.write(lines, ours)
        return
    prefix = f"{stamp()} {MARK} " if ours else f"{stamp()} "
    with contextlib.suppress(OSError):
        os.write(2, "".join(prefix + escape(line, ours) + "\n" for line in lines).encode("utf-8", "replace"))


def server_text(line: bytes | Oversize, redact: Callable[[str], str]) -> str:
    """A line of the server's output for its log, masked; one past the limit is logged as its beginning
    (masked at the cut too)."""
    if isinstance(line, Oversize):
        cut: Callable[[str], str] = getattr(redact, "cut", redact)
        return f"{cut(line.head.decode('utf-8', 'replace'))}… (a line of {line.size} bytes, cut)"
    return redact(line.decode("utf-8", "replace"))


def log_environment(sources: dict[str, str]) -> None:
    """Where the server's environment came from: names and sources, never values."""
    shell = sum(1 for source in sources.values() if source == "shell")
    named = ", ".join(f"{name} ({source})" for name, source in sorted(sources.items()) if source != "shell")
    log(f"environment: {shell} variable(s) from the shell" + (f"; {named}" if named else ""))


def log_size() -> int:
    """How long the log is now (the shim's stderr is the log file): where a run's own lines begin."""
    try:
        return os.fstat(2).st_size
    except OSError:
        return 0
