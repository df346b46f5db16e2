"""What a run's readiness said (`Ready`), what a ready run's exit was (`crash`), what an oversized
handshake answer (`too_large`), a closed stdout or a failed stdin means (`Severed`)."""

from __future__ import annotations

from pathlib import Path

from mcpctl.constants import STDOUT_EOF_GRACE
from mcpctl.errors import ErrorType, Failure, classify_exit
from mcpctl.hints import Any
from mcpctl.shim.channels import Outbox
from mcpctl.shim.log import log


class Ready:
    """Readiness held: what the handshake said (empty for "log" and "alive" readiness)."""

    def __init__(
        self, result: dict[str, Any], session: str | None = None, era: str = "legacy", config_hash: str | None = None
    ) -> None:
        from mcpctl.shim.era import server_info

        self.result = result  # initialize's (legacy) or server/discover's (modern): the bridge answers from it
        self.session = session  # an HTTP server's Mcp-Session-Id
        self.era = era
        self.server_info = server_info(era, result, config_hash)
        self.moved: dict[str, Any] = {}  # the pid, when the run had to spawn its server again

    def record_changes(self) -> dict[str, Any]:
        """What the record takes from readiness."""
        return {"server_info": self.server_info, **self.moved}


def crash(name: str, code: int, uptime: float, log_path: Path) -> Failure | None:
    """What a ready run's exit was: a crash after `uptime` seconds, or None when it exited 0."""
    if code == 0:
        return None
    up = f"{uptime:.0f}s" if uptime < 120 else f"{uptime / 60:.0f}m"
    return Failure.of(ErrorType.CRASHED, name=name, exit=classify_exit(code), uptime=up, log=log_path)


def too_large(name: str, limit: int, detail: str) -> Failure:
    """A handshake answer past max_message_bytes: a protocol error whose hint is the limit, not "only JSON-RPC"."""
    problem = Failure.of(ErrorType.PROTOCOL_ERROR, name=name, detail=detail)
    return Failure(
        problem.type, problem.message, f"if its messages are this big, raise max_message_bytes (now {limit}) of {name}"
    )


def closed_stdout(name: str, ready: bool, log_path: str | Path) -> Failure:
    """A stdio server that closed its stdout and lives on: its session is over, as surely as if it had
    exited (it can answer nothing more), so it fails now instead of at the third failed ping."""
    when = "after it was ready" if ready else "before it answered the handshake"
    return Failure(
        ErrorType.CRASHED if ready else ErrorType.PROTOCOL_ERROR,
        f"{name} closed its stdout {when} but kept running: it can answer no request",
        f"a stdio MCP server keeps stdout open for its whole session; see its stderr with `tail {log_path}`",
    )


class Severed:
    """A stdio server whose pipes ended its session while it lives: it closed its stdout (it can answer
    nothing more), or its stdin took no more (what the clients send cannot reach it). Either is a failure
    STDOUT_EOF_GRACE later, so an exit, if that is what it was, is seen first as the crash it is; the
    session is then over (a ready one restarted), instead of its requests timing out one after another."""

    def __init__(self, name: str, log_path: str | Path) -> None:
        self.name, self.log_path = name, log_path
        self.ended: list[tuple[float, Failure]] = []

    def stdout_closed(self, now: float, ready: bool) -> None:
        self.ended.append((now, closed_stdout(self.name, ready, self.log_path)))

    def stdin_failed(self, now: float, stdin: Outbox) -> None:
        """An overrun is logged as it happens (a broken pipe is most often an exit, said as such)."""
        if stdin.overrun:
            why = f"left more than {stdin.limit} bytes unread on its stdin (max_message_bytes)"
            hint = f"it stopped reading its requests; see its stderr with `tail {self.log_path}`"
            log(f"{self.name} {why}: requests can no longer reach it")
        else:
            why = "closed its stdin but kept running: it can take no request"
            hint = f"a stdio MCP server reads stdin for its whole session; see its stderr with `tail {self.log_path}`"
        self.ended.append((now, Failure(ErrorType.CRASHED, f"{self.name} {why}", hint)))

    def lost(self, now: float) -> Failure | None:
        return next((failure for at, failure in self.ended if now >= at + STDOUT_EOF_GRACE), None)

    def wakeups(self) -> list[float]:
        return [at + STDOUT_EOF_GRACE for at, _ in self.ended]
