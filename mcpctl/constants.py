"""Names and numbers that scripts, tests and the docs rely on: one place for all of them."""

from __future__ import annotations

from enum import IntEnum

# Environment variables read by mcpctl.
ENV_HOME = "MCPCTL_HOME"
ENV_CONFIG = "MCPCTL_CONFIG"
ENV_DEBUG = "MCPCTL_DEBUG"
# The language of messages (then LC_ALL, LC_MESSAGES, LANG); see mcpctl/i18n.py.
ENV_LANG = "MCPCTL_LANG"
# Put in every server's environment, so descendants can be found after they leave the process group.
ENV_INSTANCE = "MCPCTL_INSTANCE"
# Set (to the client's number) for a per-client server process, so each run ends only its own tree.
ENV_TENANT = "MCPCTL_CLIENT"

CONFIG_FILENAME = "mcpctl.toml"
# A server name, wherever it enters (the config, CLI arguments): it names files and sockets, so never a path.
SERVER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
STATE_SCHEMA = 1
JSON_SCHEMA = 1

# The protocol version the shim offers upstream: the newest one in which `ping` exists.
MCP_PROTOCOL_VERSION = "2025-11-25"

DEFAULT_STARTUP_TIMEOUT = 60.0  # seconds; npx cold starts are slow
DEFAULT_STOP_TIMEOUT = 10.0
# After closing a server's stdin, how long to wait before SIGTERM (never more than stop_timeout).
STDIN_CLOSE_GRACE = 2.0
# How long a stdio server that closed its stdout has to exit before the closing is its failure (an exit
# closes stdout a moment before the shim reaps it, and that exit, 0 or a crash, is what its run came to).
STDOUT_EOF_GRACE = 1.0
STATE_LOCK_TIMEOUT = 30.0
CONTROL_TIMEOUT = 2.0  # seconds the CLI waits for a shim to answer a control call
# contract.Control.SECRETS, here so that `call` asks it without importing contract (1 ms of its start-up).
CONTROL_SECRETS = "mcpctl/secrets"
POLL_INTERVAL = 0.02  # seconds between looks while the CLI waits for a shim's record or lock to change
ENV_LOCK_TIMEOUT = "MCPCTL_LOCK_TIMEOUT"  # seconds a command waits for the state lock
# For the test suite: a shim sends itself this signal (e.g. "SIGTERM") the moment it holds its lock.
ENV_TEST_SIGNAL_AT_LOCK = "MCPCTL_TEST_SIGNAL_AT_LOCK"

# Failure handling (issue: failure semantics). Delays are min(base * 2^(n-1), max), n = consecutive failures.
DEFAULT_RESTART = "on-failure"
RESTART_POLICIES = ("on-failure", "always", "never")
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_MAX = 60.0
DEFAULT_MAX_FAILURES = 5
DEFAULT_RESET_AFTER = 60.0  # seconds of ready running that reset the consecutive-failure count
BACKOFF_JITTER = 0.1  # up to +10 % on each delay, so servers that failed together do not retry together
# After a crash loop, manual starts are skipped for min(cooldown_base * 2^(n-1), cooldown_max).
DEFAULT_COOLDOWN_BASE = 60.0
DEFAULT_COOLDOWN_MAX = 3600.0

# Health: an MCP ping every health_interval s; unhealthy after unhealthy_after failed pings in a row.
DEFAULT_HEALTH_INTERVAL = 30.0
DEFAULT_HEALTH_TIMEOUT = 5.0
DEFAULT_UNHEALTHY_AFTER = 3
DEFAULT_METRICS_INTERVAL = 10.0
DEFAULT_READY_AFTER = 2.0
STDERR_TAIL_LINES = 20
# logs/NAME.log is rotated when it would pass log_max_bytes; log_backups older files are kept.
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_LOG_BACKUPS = 5
# One JSON-RPC message (a line) on the shared session may be this long; past it, the sender gets an error.
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# How a server's processes are shared by its clients (`share`).
SHARE_SHARED, SHARE_PER_CLIENT = "shared", "per-client"
SHARE_MODES = (SHARE_SHARED, SHARE_PER_CLIENT)
DEFAULT_SHARE = SHARE_SHARED
# At most this many clients share one server's session; one more is told so (a JSON-RPC error) and closed.
DEFAULT_MAX_CLIENTS = 256


DEFAULT_GATEWAY_LISTEN = "127.0.0.1:8765"
DEFAULT_GATEWAY_MAX_SESSIONS = 64  # HTTP sessions one token may have open at once, each a client of the shims
DEFAULT_GATEWAY_SESSION_IDLE_TIMEOUT = 3600.0  # seconds a session may go unused, with no GET stream open


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    NOT_RUNNING = 3
    START_FAILED = 4
    SKIPPED = 5
    UNHEALTHY = 6
    ENV_MISSING = 7
    UNKNOWN_SERVER = 8
    BUSY = 9
    TOOL_ERROR = 10
    UNREACHABLE = 11  # the shared session did not answer: connection lost, or timed out
    CONFIG_CONFLICT = 12  # the config file changed under a write; nothing was written
    SIGINT = 130
    SIGTERM = 143


class NagiosCode(IntEnum):
    """`check --nagios`: the monitoring-plugin convention's exit codes, in place of ExitCode."""

    OK = 0
    WARNING = 1  # every server serves, one of them badly (failing pings)
    CRITICAL = 2  # one is not serving (not running, its shim unresponsive) or a critical alert fires
    UNKNOWN = 3  # the check could not be made (no config, an invalid one, an unknown name, no servers)
