"""The shim's state machine as a table: (state, what happened) → what the shim does next.

The shim observes (a run's verdict, its exit, pings, samples, timers, requests), names what it saw as a
`Happening`, and looks the pair up here; a pair that is not in the table changes nothing. What an action
leads to is in its comment; where the restart policy decides, it is `policy.after_exit`.
"""

from __future__ import annotations

from enum import StrEnum

from mcpctl.states import ServerState


class Happening(StrEnum):
    JUDGED_READY = "judged_ready"  # the readiness condition held while the process lived
    JUDGED_FAILED = "judged_failed"  # a start failed: spawn, early exit, bad handshake, timeout
    RUN_EXITED = "run_exited"  # the server exited after it was ready, or a stdio one closed its stdout
    RESOURCE_RESTART = "resource_restart"  # a firing alert whose actions include restart
    PING_OK = "ping_ok"
    PING_FAILED = "ping_failed"  # fewer than unhealthy_after failures in a row
    PINGS_FAILED = "pings_failed"  # unhealthy_after failures in a row
    RESET_DUE = "reset_due"  # ready for reset_after seconds with failures counted
    RETRY_DUE = "retry_due"  # the backoff delay is over, or `mcpctl/retry` asked for it now
    STOP_REQUESTED = "stop_requested"  # `mcpctl/stop`, SIGTERM or SIGINT
    RESTART_REQUESTED = "restart_requested"  # `mcpctl/restart`: a person's restart, with the config as it is now


class Action(StrEnum):
    SERVE = "serve"  # → ready: attach the clients' session, start pings and samples
    END_RUN = "end_run"  # → backoff, failed or stopped, as the restart policy says
    START_RUN = "start_run"  # → starting
    MARK_UNHEALTHY = "mark_unhealthy"  # → unhealthy, then END_RUN if restart_on_unhealthy
    MARK_HEALTHY = "mark_healthy"  # → ready
    NOTE_HEALTH = "note_health"  # state unchanged: the record keeps the last ping
    RESET_FAILURES = "reset_failures"  # state unchanged: consecutive failures back to 0
    FINISH = "finish"  # → stopping → stopped: end the tree and exit
    RESTART_RUN = "restart_run"  # → starting: end the run (if any), keep the clients, start the new spec now


_S, _H, _A = ServerState, Happening, Action
TRANSITIONS: dict[tuple[ServerState, Happening], Action] = {
    (_S.STARTING, _H.JUDGED_READY): _A.SERVE,
    (_S.STARTING, _H.JUDGED_FAILED): _A.END_RUN,
    (_S.READY, _H.RUN_EXITED): _A.END_RUN,
    (_S.READY, _H.RESOURCE_RESTART): _A.END_RUN,
    (_S.READY, _H.PING_OK): _A.NOTE_HEALTH,
    (_S.READY, _H.PING_FAILED): _A.NOTE_HEALTH,
    (_S.READY, _H.PINGS_FAILED): _A.MARK_UNHEALTHY,
    (_S.READY, _H.RESET_DUE): _A.RESET_FAILURES,
    (_S.UNHEALTHY, _H.RUN_EXITED): _A.END_RUN,
    (_S.UNHEALTHY, _H.RESOURCE_RESTART): _A.END_RUN,
    (_S.UNHEALTHY, _H.PING_OK): _A.MARK_HEALTHY,
    (_S.UNHEALTHY, _H.PING_FAILED): _A.NOTE_HEALTH,
    (_S.UNHEALTHY, _H.PINGS_FAILED): _A.NOTE_HEALTH,
    (_S.UNHEALTHY, _H.RESET_DUE): _A.RESET_FAILURES,
    (_S.BACKOFF, _H.RETRY_DUE): _A.START_RUN,
    # A person's restart replaces the server in place whatever the run is doing, and tries now even in a
    # backoff (as stop-then-start always did); a stopping shim is not restarted (the CLI starts a new one).
    **{(state, _H.RESTART_REQUESTED): _A.RESTART_RUN for state in (_S.STARTING, _S.READY, _S.UNHEALTHY, _S.BACKOFF)},
    # A stop is honoured in every state.
    **{(state, _H.STOP_REQUESTED): _A.FINISH for state in ServerState},
}


def action(state: ServerState, happening: Happening) -> Action | None:
    """What the shim does when `happening` is seen in `state`; None: nothing changes."""
    return TRANSITIONS.get((state, happening))


def ping_happening(ok: bool, failures_in_a_row: int, unhealthy_after: int) -> Happening:
    """What a decided ping means: answered, failed, or failed `unhealthy_after` times in a row."""
    if ok:
        return Happening.PING_OK
    return Happening.PINGS_FAILED if failures_in_a_row >= unhealthy_after else Happening.PING_FAILED
