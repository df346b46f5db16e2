"""What start, stop, status, check and list show."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from mcpctl.render.output import duration, emit_json, say, table
from mcpctl.states import Drift, ServerState, StartOutcome, StopOutcome

if TYPE_CHECKING:  # only for annotations: `call` and `tools` must not pay for psutil and the config loader
    from mcpctl.config.model import Config
    from mcpctl.control.forget import Forgotten
    from mcpctl.control.observe import Observation
    from mcpctl.control.results import StartResult, StopResult
    from mcpctl.health import Verdict


def status(observations: list[Observation], as_json: bool) -> None:
    if as_json:
        emit_json({"servers": [o.to_json() for o in observations]})
        return
    for obs in observations:
        if obs.warning:
            sys.stderr.write(f"warning: {obs.label}: {obs.warning}\n")
    if not observations:
        sys.stdout.write("no servers configured (see `mcpctl list`, or pass -f mcpctl.toml)\n")
        return
    rows = [
        [
            obs.label,
            state_text(obs),
            str(obs.pid or "-"),
            duration(obs.uptime_s),
            str(obs.record.restarts),
            f"{obs.record.consecutive_failures}/{obs.record.total_failures}",
            _last_error(obs),
        ]
        for obs in observations
    ]
    table(["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "FAILURES", "LAST ERROR"], rows, styles={1: STATE_STYLE})
    drifted = [obs.name for obs in observations if obs.config_drift in _DRIFT]
    if drifted:
        sys.stderr.write(f"hint: config changed for {', '.join(drifted)}: run `mcpctl apply` (`mcpctl config diff`)\n")


_DRIFT = {Drift.CHANGED: " (config changed, run mcpctl apply)", Drift.REMOVED: " (not in config, run mcpctl apply)"}


def state_text(obs: Observation) -> str:
    drift = _DRIFT.get(obs.config_drift, "") if obs.config_drift else ""
    drift += " (orphaned: its config file is gone)" if obs.orphaned else ""
    if obs.state == ServerState.BACKOFF:
        return f"backoff (retry in {duration(obs.cooldown_left)}){drift}"
    if obs.state == ServerState.FAILED and obs.cooldown_left:
        return f"failed (cooldown {duration(obs.cooldown_left)})"
    if obs.record.per_client is not None and obs.state in (ServerState.READY, ServerState.UNHEALTHY):
        return f"{obs.state} (per-client: {obs.record.per_client} running){drift}"
    return obs.state + drift


def _last_error(obs: Observation) -> str:
    error = obs.current_error
    return f"{error.type.value}: {error.message}" if error else ""


STATE_STYLE: dict[str, str] = {
    ServerState.READY: "green",
    ServerState.STARTING: "yellow",
    ServerState.BACKOFF: "yellow",
    ServerState.UNHEALTHY: "red",
    ServerState.STOPPING: "yellow",
    ServerState.FAILED: "red",
    ServerState.STOPPED: "dim",
}


def start(results: list[StartResult], as_json: bool, quiet: bool = False) -> None:
    if as_json:
        emit_json({"results": [_start_json(r) for r in results]})
        return
    for result in results:
        obs = result.observation
        if quiet and result.ok:
            continue
        if result.outcome == StartOutcome.STARTED:
            say(f"{result.name}: ready in {result.elapsed_s:.2f}s (pid {obs.pid or '-'})")
        elif result.outcome == StartOutcome.SPAWNED:
            say(f"{result.name}: starting (not waiting for ready; see `mcpctl status {result.name}`)")
        elif result.outcome == StartOutcome.ALREADY_RUNNING:
            say(f"{result.name}: already {obs.state} (pid {obs.pid or '-'})")
        elif result.outcome == StartOutcome.SKIPPED:
            _skipped(result)
        elif result.outcome == StartOutcome.ENV_INVALID:
            _env_refused(result)
        else:
            _start_failure(result)


def _env_refused(result: StartResult) -> None:
    failure = result.error
    assert failure is not None
    sys.stderr.write(f"error: {result.name}: environment check failed, nothing was started [{failure.type.value}]\n")
    for problem in failure.message.split(": ", 1)[-1].split("; "):
        sys.stderr.write(f"  - {problem}\n")
    sys.stderr.write(f"hint: {failure.hint}; see `mcpctl env check {result.name}`\n")


def _skipped(result: StartResult) -> None:
    failure = result.error
    assert failure is not None
    sys.stderr.write(f"skipped: {failure.message}\n")
    if failure.hint:
        sys.stderr.write(f"hint: {failure.hint}\n")


def _start_failure(result: StartResult) -> None:
    failure = result.error
    message = failure.message if failure else "did not become ready"
    kind = f" [{failure.type.value}]" if failure else ""
    sys.stderr.write(f"error: {result.name} did not become ready{kind}: {message}\n")
    if result.stderr_tail:
        sys.stderr.write(f"  last {len(result.stderr_tail)} line(s) of its stderr:\n")
        for line in result.stderr_tail:
            sys.stderr.write(f"  | {line}\n")
    obs = result.observation
    if obs.state == ServerState.BACKOFF:
        record = obs.record
        sys.stderr.write(
            f"  retrying in {obs.cooldown_left:.1f}s (failure {record.consecutive_failures}; "
            f"`mcpctl stop {result.name}` to give up)\n"
        )
    if failure and failure.hint:
        sys.stderr.write(f"hint: {failure.hint}\n")


def _start_json(result: StartResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "outcome": result.outcome,
        "ok": result.ok,
        "elapsed_s": result.elapsed_s,
        "error": result.error.to_json() if result.error else None,
        "stderr_tail": list(result.stderr_tail),
        "server": result.observation.to_json(),
    }


def stop(results: list[StopResult], as_json: bool) -> None:
    if as_json:
        emit_json({"results": [_stop_json(r) for r in results]})
        return
    for result in results:
        if result.outcome == StopOutcome.NOT_RUNNING:
            say(f"{result.name}: not running")
            continue
        extra = f"; ended {result.leftovers_ended} leftover process(es)" if result.leftovers_ended else ""
        say(f"{result.name}: stopped in {result.elapsed_s:.2f}s{extra}")


def _stop_json(result: StopResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "outcome": result.outcome,
        "elapsed_s": result.elapsed_s,
        "leftovers_ended": result.leftovers_ended,
    }


def forgotten(results: list[Forgotten], as_json: bool) -> None:
    if as_json:
        rows = [{"name": r.name, "removed": list(r.removed), "skipped": r.kept_because} for r in results]
        emit_json({"results": rows})
        return
    if not results:
        say("nothing to forget")
    for result in results:
        if result.kept_because:
            say(f"{result.name}: kept: it {result.kept_because}")
        else:
            say(f"{result.name}: forgotten ({len(result.removed)} file(s) and folder(s) removed)")


def check(verdicts: list[Verdict], as_json: bool, nagios: bool) -> None:
    if as_json:
        emit_json({"ok": all(v.status == "ok" for v in verdicts), "servers": [v.to_json() for v in verdicts]})
        return
    if nagios:
        bad = [v for v in verdicts if v.status != "ok"]
        level = "CRITICAL" if bad else "OK"
        summary = "; ".join(f"{v.name} {v.status}: {v.detail}" for v in bad) or f"{len(verdicts)} server(s) ready"
        say(f"MCPCTL {level} - {summary}")
        return
    for v in verdicts:
        say(f"{v.name}: {v.status.replace('_', ' ')} ({v.detail})")


def server_list(config: Config, as_json: bool) -> None:
    rows = _list_rows(config)
    if as_json:
        emit_json({"config": str(config.path) if config.path else None, "servers": rows})
        return
    if not rows:
        say("no servers configured")
        return
    for row in rows:
        _list_line(row["name"], row)


def project_lists(configs: dict[str, Config], as_json: bool) -> None:
    """`list -A`: each project's configured servers (from the config file its servers were started from)."""
    groups = {project: _list_rows(config) for project, config in configs.items()}
    if as_json:
        shaped = [
            {"project": p, "config": str(configs[p].path) if configs[p].path else None, "servers": rows}
            for p, rows in groups.items()
        ]
        emit_json({"projects": shaped})
        return
    if not any(groups.values()):
        say("no servers configured in any project")
    for project, rows in groups.items():
        for row in rows:
            _list_line(f"{project}/{row['name']}", row)


def _list_line(label: str, row: dict[str, Any]) -> None:
    target = row["url"] or " ".join([row["command"] or "", *row["args"]])
    env = f"  env: {', '.join(row['env'])}" if row["env"] else ""
    say(f"{label}  [{row['transport']}]  {target}{env}")


def _list_rows(config: Config) -> list[dict[str, Any]]:
    from mcpctl.config.views import config_hash
    from mcpctl.redaction import Redactor

    return [
        {
            "name": s.name,
            "transport": s.transport,
            "command": s.command,
            "args": [Redactor(s.env.values())(arg) for arg in s.args],
            "url": s.url,
            "cwd": s.cwd,
            "env": sorted(s.env),  # names only: values may be secrets
            "startup_timeout": s.startup_timeout,
            "stop_timeout": s.stop_timeout,
            "config_hash": config_hash(config, s),
        }
        for s in config.servers.values()
    ]
