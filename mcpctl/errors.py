"""Error types, with the exit code and hint each one carries to the user."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mcpctl.constants import ExitCode


class ErrorType(StrEnum):
    USAGE = "usage"
    CONFIG_INVALID = "config_invalid"
    UNKNOWN_SERVER = "unknown_server"
    COMMAND_NOT_FOUND = "command_not_found"
    PERMISSION_DENIED = "permission_denied"
    SPAWN_FAILED = "spawn_failed"
    EXITED_DURING_STARTUP = "exited_during_startup"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    PROTOCOL_ERROR = "protocol_error"
    CRASHED = "crashed"
    SHIM_LOST = "shim_lost"
    NOT_RUNNING = "not_running"
    LOCK_TIMEOUT = "lock_timeout"
    STOP_TIMEOUT = "stop_timeout"
    STATE_CORRUPT = "state_corrupt"
    UNSUPPORTED_PLATFORM = "unsupported_platform"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Failure:
    """What went wrong, as stored in state records and shown by `status` and `--json`."""

    type: ErrorType
    message: str
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type.value, "message": self.message, "hint": self.hint or None}

    @classmethod
    def from_json(cls, data: object) -> Failure | None:
        if not isinstance(data, dict):
            return None
        try:
            kind = ErrorType(str(data.get("type")))
        except ValueError:
            kind = ErrorType.INTERNAL
        return cls(kind, str(data.get("message", "")), str(data.get("hint") or ""))


class MCPCtlError(Exception):
    """An error meant for the user: one line of message, an optional hint, an exit code."""

    exit_code = ExitCode.INTERNAL
    type = ErrorType.INTERNAL

    def __init__(self, message: str, hint: str = "", *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "message": self.message,
            "hint": self.hint or None,
            "exit_code": int(self.exit_code),
            "details": self.details,
        }


class ConfigError(MCPCtlError):
    exit_code = ExitCode.USAGE
    type = ErrorType.CONFIG_INVALID


class UsageError(MCPCtlError):
    exit_code = ExitCode.USAGE
    type = ErrorType.USAGE


class UnknownServerError(MCPCtlError):
    exit_code = ExitCode.UNKNOWN_SERVER
    type = ErrorType.UNKNOWN_SERVER


class BusyError(MCPCtlError):
    exit_code = ExitCode.BUSY
    type = ErrorType.LOCK_TIMEOUT


class StateDirError(MCPCtlError):
    exit_code = ExitCode.INTERNAL
    type = ErrorType.INTERNAL


class UnsupportedPlatformError(MCPCtlError):
    exit_code = ExitCode.INTERNAL
    type = ErrorType.UNSUPPORTED_PLATFORM
