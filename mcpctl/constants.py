"""Names and numbers that scripts, tests and the docs rely on: one place for all of them."""

from __future__ import annotations

from enum import IntEnum

# Environment variables read by mcpctl.
ENV_HOME = "MCPCTL_HOME"
ENV_CONFIG = "MCPCTL_CONFIG"
ENV_DEBUG = "MCPCTL_DEBUG"
# Put in every server's environment, so descendants can be found after they leave the process group.
ENV_INSTANCE = "MCPCTL_INSTANCE"

CONFIG_FILENAME = "mcpctl.toml"
STATE_SCHEMA = 1
JSON_SCHEMA = 1

# The protocol version the shim offers upstream: the newest one in which `ping` exists.
MCP_PROTOCOL_VERSION = "2025-11-25"

DEFAULT_STARTUP_TIMEOUT = 60.0  # seconds; npx cold starts are slow
DEFAULT_STOP_TIMEOUT = 10.0
# After closing a server's stdin, how long to wait before SIGTERM (never more than stop_timeout).
STDIN_CLOSE_GRACE = 2.0
STATE_LOCK_TIMEOUT = 30.0
STDERR_TAIL_LINES = 20


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
    SIGINT = 130
    SIGTERM = 143
