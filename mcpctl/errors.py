"""The error taxonomy: every failure has a type, a one-line message, a hint, a retryable flag, an exit code."""

from __future__ import annotations

from enum import StrEnum

from mcpctl.constants import ExitCode
from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass


class ErrorType(StrEnum):
    USAGE = "usage"
    CONFIG_INVALID = "config_invalid"
    CONFIG_CONFLICT = "config_conflict"
    UNKNOWN_SERVER = "unknown_server"
    ENV_MISSING = "env_missing"
    COMMAND_NOT_FOUND = "command_not_found"
    PERMISSION_DENIED = "permission_denied"
    SPAWN_FAILED = "spawn_failed"
    EXITED_DURING_STARTUP = "exited_during_startup"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    PROTOCOL_ERROR = "protocol_error"
    PORT_IN_USE = "port_in_use"
    CRASHED = "crashed"
    CRASH_LOOP = "crash_loop"
    UNHEALTHY = "unhealthy"
    COOLDOWN = "cooldown"
    NOT_RUNNING = "not_running"
    SERVER_RUNNING = "server_running"
    SHIM_LOST = "shim_lost"
    UNRESPONSIVE = "unresponsive"
    LOCK_TIMEOUT = "lock_timeout"
    TOO_MANY_CLIENTS = "too_many_clients"
    TOO_MANY_OPEN_FILES = "too_many_open_files"
    CONNECTION_LOST = "connection_lost"
    TOOL_ERROR = "tool_error"
    TIMEOUT = "timeout"
    UNSUPPORTED_PLATFORM = "unsupported_platform"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Kind(Record):
    """What every error of one type shares. Templates are filled with str.format(**fields)."""

    template: str
    hint: str
    retryable: bool
    exit_code: ExitCode


_LOG = "see its stderr with `tail {log}`"
KINDS: dict[ErrorType, Kind] = {
    ErrorType.USAGE: Kind("{detail}", "see `mcpctl --help`", False, ExitCode.USAGE),
    ErrorType.CONFIG_INVALID: Kind("{detail}", "fix the config file and run the command again", False, ExitCode.USAGE),
    ErrorType.CONFIG_CONFLICT: Kind(
        "{path} changed while mcpctl was about to write it; nothing was written",
        "run the command again: it reads the file as it is now",
        True,
        ExitCode.CONFIG_CONFLICT,
    ),
    ErrorType.UNKNOWN_SERVER: Kind(
        "unknown server {name!r}", "run `mcpctl list` to see the configured servers", False, ExitCode.UNKNOWN_SERVER
    ),
    ErrorType.ENV_MISSING: Kind(
        "{name}: missing environment: {detail}",
        "export the variables or set them in the config",
        False,
        ExitCode.ENV_MISSING,
    ),
    ErrorType.COMMAND_NOT_FOUND: Kind(
        "command not found: {command}", "install it, or give the full path in `command`", False, ExitCode.START_FAILED
    ),
    ErrorType.PERMISSION_DENIED: Kind(
        "permission denied running {command}",
        "make it executable (chmod +x) and check `cwd`",
        False,
        ExitCode.START_FAILED,
    ),
    ErrorType.SPAWN_FAILED: Kind(
        "cannot start {name}: {detail}", "check `command` and `cwd`", False, ExitCode.START_FAILED
    ),
    ErrorType.EXITED_DURING_STARTUP: Kind(
        "{name} exited during startup ({exit}) before it was ready", _LOG, True, ExitCode.START_FAILED
    ),
    ErrorType.HANDSHAKE_TIMEOUT: Kind(
        "{name} was not ready within {timeout:g}s{detail}",
        "raise startup_timeout if the server is slow to start (npx cold starts can take a minute)",
        True,
        ExitCode.START_FAILED,
    ),
    ErrorType.PROTOCOL_ERROR: Kind(
        "{name} broke the MCP protocol during startup: {detail}",
        'the server must write only JSON-RPC to stdout (logs go to stderr), or set readiness = "log"',
        False,
        ExitCode.START_FAILED,
    ),
    ErrorType.PORT_IN_USE: Kind(
        "{name}: port {port} of its url is already in use by {holder}",
        "stop that process, or give {name} another port (in `url` and in its command)",
        False,
        ExitCode.START_FAILED,
    ),
    ErrorType.CRASHED: Kind("{name} exited unexpectedly ({exit}) after {uptime}", _LOG, True, ExitCode.START_FAILED),
    ErrorType.CRASH_LOOP: Kind(
        "{name} failed {failures} times in a row; automatic restarts stopped ({detail})",
        "fix the cause, then `mcpctl start {name} --force`",
        False,
        ExitCode.START_FAILED,
    ),
    ErrorType.UNHEALTHY: Kind("{name} is unhealthy: {detail}", "see `mcpctl status {name}`", True, ExitCode.UNHEALTHY),
    ErrorType.COOLDOWN: Kind(
        "{name} is {detail} after {failures} failure(s); next try in {left}",  # {detail}: control/start.HELD
        "use --force to start now",
        True,
        ExitCode.SKIPPED,
    ),
    ErrorType.NOT_RUNNING: Kind(
        "{name} is not running", "start it with `mcpctl start {name}`", False, ExitCode.NOT_RUNNING
    ),
    ErrorType.SERVER_RUNNING: Kind(
        "{name} {detail}; nothing was forgotten", "stop it first: `mcpctl stop {name}`", False, ExitCode.USAGE
    ),
    ErrorType.SHIM_LOST: Kind(
        "the shim of {name} (pid {pid}) is gone; {detail}",
        "run `mcpctl stop {name}` to end what is left, then start it again",
        True,
        ExitCode.NOT_RUNNING,
    ),
    ErrorType.UNRESPONSIVE: Kind(
        "the shim of {name} (pid {pid}) did not answer within {timeout:g}s: it is stopped (SIGSTOP) or stuck",
        "`mcpctl stop {name}` ends that shim and its server's tree; then `mcpctl start {name}`",
        False,
        ExitCode.START_FAILED,
    ),
    ErrorType.LOCK_TIMEOUT: Kind(
        "another mcpctl command held the state lock {path} for {timeout:g}s",
        "wait for it to finish, or find it with `fuser {path}`",
        True,
        ExitCode.BUSY,
    ),
    ErrorType.TOO_MANY_CLIENTS: Kind(
        "{name} has {max_clients} clients connected, its max_clients",
        "try again once one of them has left, or raise max_clients of {name} in its config",
        True,
        ExitCode.BUSY,
    ),
    ErrorType.TOO_MANY_OPEN_FILES: Kind(
        "{name} is near its limit of open files ({limit}): its shim takes no new client for now",
        "try again in a moment; if it lasts, raise the open-files limit (`ulimit -n`), then stop and start {name}",
        True,
        ExitCode.BUSY,
    ),
    ErrorType.CONNECTION_LOST: Kind("lost the connection to {name}: {detail}", "try again", True, ExitCode.UNREACHABLE),
    ErrorType.TOOL_ERROR: Kind("{detail}", "", False, ExitCode.TOOL_ERROR),
    ErrorType.TIMEOUT: Kind("timed out after {timeout:g}s: {detail}", "raise --timeout", True, ExitCode.UNREACHABLE),
    ErrorType.UNSUPPORTED_PLATFORM: Kind("{detail}", "", False, ExitCode.INTERNAL),
    ErrorType.INTERNAL: Kind("{detail}", "rerun with MCPCTL_DEBUG=1 and report it", False, ExitCode.INTERNAL),
}

# A crash loop's {detail}: the failure that ended its last try, as its own message (status translates it
# as that failure's type would, i18n.nested).
LAST_FAILURE = N_("last: {detail}")


@dataclass(frozen=True)
class Failure(Record):
    """What went wrong, as stored in state records and shown by `status` and `--json`."""

    type: ErrorType
    message: str
    hint: str = ""

    @classmethod
    def of(cls, kind: ErrorType, **fields: Any) -> Failure:
        """A failure with the type's own message and hint, filled in from `fields`."""
        info = KINDS[kind]
        fields.setdefault("detail", "")
        return cls(kind, info.template.format(**fields), info.hint.format(**fields))

    @property
    def retryable(self) -> bool:
        return KINDS[self.type].retryable

    @property
    def exit_code(self) -> ExitCode:
        return KINDS[self.type].exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "message": self.message,
            "hint": self.hint or None,
            "retryable": self.retryable,
        }

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
    """An error meant for the user: one line of message, an optional hint, an exit code.

    The root of every error mcpctl raises, from the CLI and from `mcpctl.Manager` alike: `.type` is the
    `ErrorType` (the `type` of `--json` errors), `.retryable` says whether trying again may help.
    """

    type = ErrorType.INTERNAL

    def __init__(self, message: str, hint: str = "", *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or []

    @property
    def exit_code(self) -> ExitCode:
        return KINDS[self.type].exit_code

    @property
    def retryable(self) -> bool:
        return KINDS[self.type].retryable

    @classmethod
    def of(cls, kind: ErrorType, **fields: Any) -> MCPCtlError:
        """An error with the type's own message and hint; from the base class, of the type's own subclass."""
        return cls.from_failure(Failure.of(kind, **fields))

    @classmethod
    def from_failure(cls, failure: Failure) -> MCPCtlError:
        """The error that `failure` (a record's last error, a shim's answer) describes, keeping its type."""
        target = ERROR_CLASSES.get(failure.type, MCPCtlError) if cls is MCPCtlError else cls
        error = target(failure.message, failure.hint)
        error.type = failure.type
        return error

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "message": self.message,
            "hint": self.hint or None,
            "retryable": self.retryable,
            "exit_code": int(self.exit_code),
            "details": self.details,
        }


class ConfigError(MCPCtlError):
    type = ErrorType.CONFIG_INVALID


class ConfigConflictError(MCPCtlError):
    type = ErrorType.CONFIG_CONFLICT

    @classmethod
    def changed(cls, path: object) -> MCPCtlError:
        return cls.of(ErrorType.CONFIG_CONFLICT, path=path)


class UsageError(MCPCtlError):
    type = ErrorType.USAGE


class UnknownServerError(MCPCtlError):
    type = ErrorType.UNKNOWN_SERVER


class BusyError(MCPCtlError):
    """Another mcpctl command held the state lock, or the server's shim takes no more clients (it has
    max_clients connected, or it is near its limit of open files)."""

    type = ErrorType.LOCK_TIMEOUT


class StateDirError(MCPCtlError):
    type = ErrorType.INTERNAL


class UnsupportedPlatformError(MCPCtlError):
    type = ErrorType.UNSUPPORTED_PLATFORM


class StartError(MCPCtlError):
    """The server could not be started or kept running (its command, its handshake, its crashes, a cooldown)."""

    type = ErrorType.SPAWN_FAILED


class EnvError(MCPCtlError):
    type = ErrorType.ENV_MISSING


class NotRunningError(MCPCtlError):
    """The server is not running (and was not to be started), or its shim is gone."""

    type = ErrorType.NOT_RUNNING


class UnhealthyError(MCPCtlError):
    type = ErrorType.UNHEALTHY


class ConnectionLostError(MCPCtlError):
    """The connection to the server's shim closed before an answer came (retryable)."""

    type = ErrorType.CONNECTION_LOST


class TimedOutError(MCPCtlError):
    type = ErrorType.TIMEOUT


class ToolError(MCPCtlError):
    """The server answered a tool call with an error; `.result` holds its result when it sent one (isError)."""

    type = ErrorType.TOOL_ERROR
    result: Any = None


_STARTUP = (
    ErrorType.COMMAND_NOT_FOUND,
    ErrorType.PERMISSION_DENIED,
    ErrorType.SPAWN_FAILED,
    ErrorType.EXITED_DURING_STARTUP,
    ErrorType.HANDSHAKE_TIMEOUT,
    ErrorType.PROTOCOL_ERROR,
    ErrorType.CRASHED,
    ErrorType.CRASH_LOOP,
    ErrorType.COOLDOWN,
    ErrorType.UNRESPONSIVE,
)
# The class of each type's errors; a type not named here is a plain MCPCtlError.
ERROR_CLASSES: dict[ErrorType, type[MCPCtlError]] = {
    ErrorType.USAGE: UsageError,
    ErrorType.CONFIG_INVALID: ConfigError,
    ErrorType.CONFIG_CONFLICT: ConfigConflictError,
    ErrorType.UNKNOWN_SERVER: UnknownServerError,
    ErrorType.ENV_MISSING: EnvError,
    **dict.fromkeys(_STARTUP, StartError),
    ErrorType.UNHEALTHY: UnhealthyError,
    ErrorType.NOT_RUNNING: NotRunningError,
    ErrorType.SHIM_LOST: NotRunningError,
    ErrorType.LOCK_TIMEOUT: BusyError,
    ErrorType.TOO_MANY_CLIENTS: BusyError,
    ErrorType.TOO_MANY_OPEN_FILES: BusyError,
    ErrorType.CONNECTION_LOST: ConnectionLostError,
    ErrorType.TOOL_ERROR: ToolError,
    ErrorType.TIMEOUT: TimedOutError,
    ErrorType.UNSUPPORTED_PLATFORM: UnsupportedPlatformError,
}


# How a process ended, a failure's {exit}: English in the record, translated where status shows it
# (i18n._translate); the signal's own name is kept. The numbered one first: the other would match it too.
EXITS = (N_("killed by signal {number}"), N_("killed by {signal}"), N_("exit code {code}"))


def classify_exit(code: int) -> str:
    """How a process ended, in words: "exit code 3" or "killed by SIGKILL"."""
    import signal

    numbered, named, exited = EXITS
    if code >= 0:
        return exited.format(code=code)
    try:
        return named.format(signal=signal.Signals(-code).name)
    except ValueError:
        return numbered.format(number=-code)


def classify_spawn_error(exc: OSError, name: str, command: str) -> Failure:
    """Map an exception from starting a process to its error type."""
    if isinstance(exc, FileNotFoundError):
        return Failure.of(ErrorType.COMMAND_NOT_FOUND, name=name, command=command)
    if isinstance(exc, PermissionError):
        return Failure.of(ErrorType.PERMISSION_DENIED, name=name, command=command)
    return Failure.of(ErrorType.SPAWN_FAILED, name=name, detail=exc.strerror or str(exc))


# A shell's "not found" (127) and "cannot execute" (126), from a wrapper such as `sh -c` or npx: retrying
# cannot fix them any more than a missing executable.
_SHELL_EXITS = {127: ErrorType.COMMAND_NOT_FOUND, 126: ErrorType.PERMISSION_DENIED}


def classify_startup_exit(name: str, command: str | None, code: int, last_words: str, log: object) -> Failure:
    """A server that exited with `code` before it was ready; `last_words`: its last line of output."""
    kind = _SHELL_EXITS.get(code)
    if kind is None:
        return Failure.of(ErrorType.EXITED_DURING_STARTUP, name=name, exit=classify_exit(code), log=log)
    said = f": {last_words}" if last_words else ""
    return Failure.of(kind, name=name, command=f"{command} exited {code}{said}")
