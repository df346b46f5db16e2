"""Options defined once: the typer app declares its options from these (flags and help, so `--help`
and the completions say what the hot path parses), and hot/run.py parses the hot commands by them."""

from __future__ import annotations

import math

from mcpctl.constants import ENV_CONFIG, ENV_HOME
from mcpctl.lean import Record, dataclass


@dataclass(frozen=True)
class Opt(Record):
    """One option: its flags, its help, and whether it takes a value (else it is a flag)."""

    flags: tuple[str, ...]
    help: str
    takes_value: bool = False

    @property
    def key(self) -> str:
        """Its name in the parsed values: the long flag without dashes (`--no-start` → `no_start`)."""
        return max(self.flags, key=len).lstrip("-").replace("-", "_")


CONFIG = Opt(
    ("-f", "--config"),
    f"Config file (else ${ENV_CONFIG}, else ./mcpctl.toml upward, else the user config dir's).",
    takes_value=True,
)
HOME = Opt(("--home",), f"State directory (else ${ENV_HOME}, else the config's home).", takes_value=True)
PROJECT = Opt(("--project",), "Act on this project's servers (else the config file's).", takes_value=True)
QUIET = Opt(
    ("-q", "--quiet"),
    "start, stop, restart, status, check, forget, resume and gateway print only errors (and --json output);"
    " the exit code tells the rest.",
)
TRUST = Opt(("--trust",), "Use config and env files even if another user owns them or can write them.")

JSON = Opt(("--json",), "Machine-readable output on stdout.")
ALL = Opt(("--all", "-a"), "Every configured server.")
ALL_PROJECTS = Opt(("--all-projects", "-A"), "Every project's servers in the state dir.")
NAGIOS = Opt(
    ("--nagios",),
    "Monitoring-plugin output and exit codes: 0 OK, 1 WARNING (one fails its pings), 2 CRITICAL (one is not"
    " running or unresponsive, or a critical alert fires), 3 UNKNOWN (no config, an invalid one, an unknown name).",
)
NO_START = Opt(("--no-start",), "Exit 3 instead of starting a server that is not running.")
DRAIN = Opt(("--drain",), "On the end of stdin, wait for the answers in flight (for scripts that pipe requests in).")
TIMEOUT = Opt(("--timeout",), "Seconds for the whole command, retries included.", takes_value=True)
RETRIES = Opt(("--retries",), "Retries after transient failures (connection lost).", takes_value=True)
READY_TIMEOUT = Opt(("--timeout",), "Seconds to wait for ready (default: startup_timeout).", takes_value=True)
STOP_TIMEOUT = Opt(
    ("--timeout",),
    "Seconds after SIGTERM (and 5 of slack) before the stop kills the shim and what is left; at most the"
    " server's stop_timeout (the default), when its shim kills it.",
    takes_value=True,
)
NO_WAIT = Opt(("--no-wait",), "Return once the shim runs; do not wait for ready.")
FORCE = Opt(("--force",), "Start even during a backoff or crash-loop cooldown.")
ARGS = Opt(("--args",), "Arguments as a JSON object.", takes_value=True)
UNMASKED = Opt(("--unmasked",), "Print what the server sent as is: its secrets are not masked.")


def positive_seconds(value: float) -> bool:
    """The rule of every --timeout and interval: a positive, finite number of seconds (nan, inf, -1: no)."""
    return math.isfinite(value) and value > 0


@dataclass(frozen=True)
class Hot(Record):
    """A hot command: its options, how many arguments it takes (at least, at most: None for any; the
    first is a server name, or all are), and the defaults of --timeout and --retries where it has them."""

    options: tuple[Opt, ...]
    arguments: tuple[int, int | None]
    timeout: float | None = None
    retries: int = 0

    @property
    def all_names(self) -> bool:
        return self.arguments[1] is None and self.arguments[0] == 0


GLOBAL = (CONFIG, HOME, PROJECT, QUIET, TRUST)
DEFAULTS = {"tools": (30.0, 3), "call": (60.0, 3), "ping": (10.0, 0)}  # the session commands' --timeout, --retries
HOT = {
    "start": Hot((ALL, READY_TIMEOUT, NO_WAIT, FORCE, JSON), (0, None)),
    "stop": Hot((ALL, STOP_TIMEOUT, JSON), (0, None)),
    "restart": Hot((ALL, READY_TIMEOUT, FORCE, JSON), (0, None)),
    "status": Hot((ALL_PROJECTS, JSON), (0, None)),
    "check": Hot((ALL, NAGIOS, JSON), (0, None)),
    "connect": Hot((NO_START, DRAIN), (1, 1)),
    "tools": Hot((NO_START, TIMEOUT, RETRIES, JSON, UNMASKED), (1, 1), *DEFAULTS["tools"]),
    "call": Hot((ARGS, NO_START, TIMEOUT, RETRIES, JSON, UNMASKED), (2, None), *DEFAULTS["call"]),
    "ping": Hot((NO_START, TIMEOUT, RETRIES, JSON), (1, 1), *DEFAULTS["ping"]),
}


def hoisted(argv: list[str]) -> list[str]:
    """`argv` with the global flags that take no value (`--trust`, `-q`/`--quiet`) written after the command
    moved before it, where the parsers take them: `mcpctl client setup cursor --trust`, as a hint that says
    "pass --trust" reads, is `mcpctl --trust client setup cursor`. Nothing after a `--` moves."""
    flags = {flag for opt in GLOBAL if not opt.takes_value for flag in opt.flags}
    valued = {flag for opt in GLOBAL if opt.takes_value for flag in opt.flags}
    command = None  # where the command word is
    skip = False
    for index, word in enumerate(argv):
        if skip:
            skip = False
        elif word in valued:
            skip = True
        elif not word.startswith("-"):
            command = index
            break
    if command is None:
        return argv
    end = argv.index("--") if "--" in argv[command:] else len(argv)
    moved = [word for word in argv[command:end] if word in flags]
    if not moved:
        return argv
    rest = [word for word in argv[command:end] if word not in flags]
    return [*argv[:command], *moved, *rest, *argv[end:]]
