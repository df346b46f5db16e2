"""`mcpctl apply`: bring what runs in line with the config file, restarting only what must be.

The plan compares the file with what each live shim runs (the config hash in its record, and the view
it was given in applied.json): a server new in the config is started, one removed from it is stopped,
one whose changed settings need a new process (settings.py's RESTART: command, args, env, headers, ...)
is restarted, and one whose health, alert, log or restart settings changed is updated in place
(`mcpctl/update`: the server keeps its pid).
A server that is not running and not new is started when it was last wanted running (wishes.py: its
start failed, a pre-flight refused it, or it ended since), so an apply retried after fixing the config
starts what the failed one did not; one a person stopped is left as it is: that was their choice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from mcpctl import protocol
from mcpctl.config.history import Version
from mcpctl.config.impact import FieldChange, field_changes
from mcpctl.config.model import Config, ServerConfig
from mcpctl.config.views import (
    RESTART,
    UPDATE,
    applied_hash,
    config_hash,
    remember,
    running_view,
    secret_key,
    view,
)
from mcpctl.constants import ExitCode
from mcpctl.contract import UPDATABLE, Control
from mcpctl.control import wishes
from mcpctl.control.controller import Controller, lock_timeout
from mcpctl.control.observe import Observation, observe, started_elsewhere
from mcpctl.control.results import StartResult, StopResult
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths
from mcpctl.state import state_lock
from mcpctl.states import ServerState, StartOutcome

KINDS = ("start", "stop", "restart", "update", "unchanged", "not_running", "foreign")
# Why an action is planned (English: --json carries it); KNOWN lets `mcpctl apply` show it translated.
REMOVED, NEW, RUNS = N_("removed from the config"), N_("new in the config"), N_("runs the config in the file")
FOREIGN = N_("started from {origin}{gone}; left running (`mcpctl stop` ends it)")
ORPHANED = N_(" (gone: orphaned)")
WANTED = N_("not running, though last wanted running (its start failed, or it ended since)")
IDLE = N_("not running (start it with `mcpctl start`)")
UNTRACKED = N_("what it runs is not known (started before mcpctl kept track)")
CHANGED, UPDATED = N_("changed: {names}"), N_("changed: {names} (no restart needed)")
UPDATE_FAILED = N_("{reason}; the update failed ({detail})")
# What an action did (English: --json carries it), the words of a start's outcome too.
STOPPED_IN, READY_IN = N_("stopped in {elapsed:.2f}s"), N_("{done}, ready in {elapsed:.2f}s (pid {pid})")
DONE, UNSET = (N_("started"), N_("restarted")), N_("no setting changed")
UPDATED_IN = N_("updated in place ({changed}); pid {pid} kept")
OUTCOME_WORDS = (N_("already running"), N_("spawned"), N_("skipped"), N_("env invalid"))
KNOWN = (FOREIGN, UPDATE_FAILED, UPDATED, CHANGED, STOPPED_IN, READY_IN, UPDATED_IN)


@dataclass(frozen=True)
class Action(Record):
    """What apply does to one server, and why."""

    name: str
    kind: str  # one of KINDS
    reason: str
    fields: tuple[FieldChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.kind,
            "reason": self.reason,
            "fields": [f.to_json() for f in self.fields],
        }


@dataclass(frozen=True)
class Outcome(Record):
    """What carrying out one action did; `result` is the start/stop result where there was one."""

    action: Action
    ok: bool
    detail: str
    result: StartResult | StopResult | None = None

    def to_json(self) -> dict[str, Any]:
        outcome = self.result.outcome if self.result is not None else ("updated" if self.ok else "failed")
        pid = self.result.observation.pid if isinstance(self.result, StartResult) else None
        action = self.action
        return {
            "name": action.name,
            "action": action.kind,
            "ok": self.ok,
            "outcome": outcome,
            "detail": self.detail,
            "pid": pid,
        }


def plan(paths: Paths, config: Config, last: Version | None) -> list[Action]:
    """One action per server in the file or running, sorted by name."""
    key = secret_key(paths)
    running = {name: obs for name in paths.known_servers() if _alive(obs := observe(paths, name))}
    actions = []
    for name in sorted(set(config.servers) | set(running)):
        server = config.servers.get(name)
        if server is None:
            actions.append(_removed(config, running[name]))
        elif name not in running:
            actions.append(_idle(paths, name, last))
        else:
            actions.append(_compare(paths, config, server, _running_hash(paths, running[name]), key))
    return actions


def _removed(config: Config, obs: Observation) -> Action:
    """Stop it, unless another config file (of the same project name), or one now gone, started it."""
    origin = obs.record.config_file
    if origin is None or not started_elsewhere(config, obs):
        return Action(obs.name, "stop", REMOVED)
    gone = ORPHANED if not os.path.exists(origin) else ""
    return Action(obs.name, "foreign", FOREIGN.format(origin=origin, gone=gone))


def _alive(obs: Observation) -> bool:
    return obs.shim_pid is not None and obs.state != ServerState.STOPPING


def _running_hash(paths: Paths, obs: Observation) -> str | None:
    """What a live shim runs. Its record says so, once it wrote one; a shim still booting has not, and
    runs what applied.json says: the start that spawned it wrote that just before, under the state lock."""
    if obs.record.config_hash is not None and obs.record.shim_pid == obs.shim_pid:
        return obs.record.config_hash
    return applied_hash(paths, obs.name) or obs.record.config_hash


def _idle(paths: Paths, name: str, last: Version | None) -> Action:
    """A configured server with no live shim: new, or wanted running and down (start it), or stopped on
    purpose (leave it). The version says what the config was, not what started: a start that failed is
    recorded in it too, and the wish is what tells the two apart."""
    new = name not in last.views if last is not None else not paths.state_file(name).exists()
    if new:
        return Action(name, "start", NEW)
    if wishes.wanted(paths, name) == wishes.Wish.RUNNING:
        return Action(name, "start", WANTED)
    return Action(name, "not_running", IDLE)


def _compare(paths: Paths, config: Config, server: ServerConfig, running_hash: str | None, key: bytes) -> Action:
    if running_hash == config_hash(config, server):
        return Action(server.name, "unchanged", RUNS)
    before = running_view(paths, server.name, running_hash)
    if before is None:
        return Action(server.name, "restart", UNTRACKED)
    changes = field_changes(before, view(config, server, key))
    needs = {change.impact for change in changes}
    names = ", ".join(change.field for change in changes if change.impact in (RESTART, UPDATE))
    if RESTART in needs:
        return Action(server.name, "restart", CHANGED.format(names=names), changes)
    return Action(server.name, "update", UPDATED.format(names=names or "settings"), changes)


def carry_out(paths: Paths, config: Config, actions: list[Action], controller: Controller) -> list[Outcome]:
    """Stop the removed, update in place, restart the changed, start the new; in that order."""
    by_kind: dict[str, list[Action]] = {kind: [] for kind in KINDS}
    for action in actions:
        by_kind[action.kind].append(action)
    outcomes: dict[str, Outcome] = {}
    removed = by_kind["stop"]
    for action, stop in zip(removed, controller.stop([ServerConfig(name=a.name) for a in removed]), strict=True):
        outcomes[action.name] = Outcome(action, True, STOPPED_IN.format(elapsed=stop.elapsed_s), stop)
    restarts = list(by_kind["restart"])
    for action in by_kind["update"]:
        outcome = _update(paths, config, config.servers[action.name], action)
        if outcome.ok:
            outcomes[action.name] = outcome
        else:  # an older shim, or one that went away meanwhile: a restart gives it the settings
            reason = UPDATE_FAILED.format(reason=action.reason, detail=outcome.detail)
            restarts.append(Action(action.name, "restart", reason, action.fields))
    outcomes.update(_run(controller.restart, config, restarts))
    outcomes.update(_run(controller.start, config, by_kind["start"]))
    return [outcomes[a.name] for a in actions if a.name in outcomes]


def _run(
    method: Callable[[list[ServerConfig]], list[StartResult]], config: Config, group: list[Action]
) -> dict[str, Outcome]:
    if not group:
        return {}
    results = method([config.servers[action.name] for action in group])
    return {a.name: Outcome(a, r.ok, _started(a, r), r) for a, r in zip(group, results, strict=True)}


# How the worst outcome of a start or restart ends the command, as for `mcpctl start`.
_EXIT = (
    (StartOutcome.FAILED, ExitCode.START_FAILED),
    (StartOutcome.ENV_INVALID, ExitCode.ENV_MISSING),
    (StartOutcome.SKIPPED, ExitCode.SKIPPED),
)


def exit_code(outcomes: list[Outcome]) -> int:
    seen = {o.result.outcome for o in outcomes if isinstance(o.result, StartResult)}
    return next((int(code) for outcome, code in _EXIT if outcome in seen), int(ExitCode.OK))


def _update(paths: Paths, config: Config, server: ServerConfig, action: Action) -> Outcome:
    settings = {name: getattr(server, name) for name in UPDATABLE}
    settings["alerts"] = config.alerts_for(server)
    digest = config_hash(config, server)
    try:
        answer = protocol.call(
            paths.control_socket(server.name),
            Control.UPDATE,
            {"settings": settings, "config_hash": digest},
            timeout=5.0,
        )
    except (OSError, protocol.ProtocolError) as exc:
        return Outcome(action, False, str(exc) or type(exc).__name__)
    with state_lock(paths.lock, lock_timeout()):
        remember(paths, config, server)
    changed = ", ".join(answer.get("updated", [])) if isinstance(answer, dict) else ""
    pid = observe(paths, server.name).pid
    return Outcome(action, True, UPDATED_IN.format(changed=changed or UNSET, pid=pid or "-"))


def _started(action: Action, result: StartResult) -> str:
    if result.outcome == StartOutcome.STARTED:
        done = DONE[action.kind == "restart"]
        return READY_IN.format(done=done, elapsed=result.elapsed_s, pid=result.observation.pid or "-")
    error = result.error
    if error is None:
        return result.outcome.replace("_", " ")  # already running: someone started it meanwhile
    return (
        error.message
        if result.outcome == StartOutcome.FAILED
        else f"{result.outcome.replace('_', ' ')}: {error.message}"
    )
