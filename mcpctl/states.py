"""The words of a server's life: its states, what a start or a stop came to, drift, readiness modes.

They are `StrEnum`s: a member is its string, so state files, events and `--json` read exactly as before,
and a record written by an older mcpctl still compares equal.
"""

from __future__ import annotations

from enum import StrEnum


class ServerState(StrEnum):
    """What a server's record says (`stopped → starting → ready ⇄ unhealthy → stopping → stopped`)."""

    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    BACKOFF = "backoff"  # a run ended; the shim waits to retry
    STOPPING = "stopping"
    FAILED = "failed"  # the shim gave up: crash-loop limit, or a failure the policy does not retry
    # Never written by a shim: what the CLI calls a live shim (it holds the lock) that does not answer a
    # control call in time (frozen by SIGSTOP, or stuck), whatever its last record says.
    UNRESPONSIVE = "unresponsive"


# States in which a shim lives (it holds the instance lock).
LIVE = frozenset({ServerState.STARTING, ServerState.READY, ServerState.UNHEALTHY, ServerState.BACKOFF,
                  ServerState.STOPPING, ServerState.UNRESPONSIVE})  # fmt: skip
# States in which a server process runs or is being started.
RUNNING = frozenset({ServerState.STARTING, ServerState.READY, ServerState.UNHEALTHY, ServerState.UNRESPONSIVE})
# States in which the server answered its handshake and serves clients.
SERVING = frozenset({ServerState.READY, ServerState.UNHEALTHY})
# States after which a start is held back by a cooldown.
HELD_BACK = frozenset({ServerState.BACKOFF, ServerState.FAILED})


class StartOutcome(StrEnum):
    STARTED = "started"
    ALREADY_RUNNING = "already_running"
    SPAWNED = "spawned"  # --no-wait: the shim runs; readiness was not waited for
    FAILED = "failed"
    SKIPPED = "skipped"  # held back by a backoff or cooldown (not a failure)
    ENV_INVALID = "env_invalid"  # refused before anything was spawned


START_FAILURES = frozenset({StartOutcome.FAILED, StartOutcome.SKIPPED, StartOutcome.ENV_INVALID})


class StopOutcome(StrEnum):
    STOPPED = "stopped"
    NOT_RUNNING = "not_running"


class Drift(StrEnum):
    """The config file against what a live shim runs."""

    SAME = "same"
    CHANGED = "changed"
    REMOVED = "removed"
    FOREIGN = "foreign"  # not in the file, and another config file started it: apply leaves it running


class Readiness(StrEnum):
    """How a start decides that the server is ready."""

    MCP = "mcp"  # the MCP handshake completed
    LOG = "log"  # a line of its stderr matched ready_pattern
    ALIVE = "alive"  # still alive after ready_after seconds
