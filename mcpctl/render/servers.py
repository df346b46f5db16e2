"""What start, stop, status, check and list show."""

from __future__ import annotations

import sys

from mcpctl.errors import KINDS, ErrorType
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.i18n import N_, _, failure_text, fill, translate
from mcpctl.render.output import duration, emit_json, hint_line, say, table
from mcpctl.states import Drift, ServerState, StartOutcome, StopOutcome

if TYPE_CHECKING:  # only for annotations: `call` and `tools` must not pay for psutil and the config loader
    from mcpctl.config.model import Config
    from mcpctl.control.forget import Forgotten
    from mcpctl.control.observe import Observation
    from mcpctl.control.results import StartResult, StopResult
    from mcpctl.errors import MCPCtlError
    from mcpctl.health import Verdict


def status(observations: list[Observation], as_json: bool) -> None:
    if as_json:
        emit_json({"servers": [o.to_json() for o in observations]})
        return
    for obs in observations:
        if obs.warning:
            sys.stderr.write(_("warning: {name}: {warning}").format(name=obs.label, warning=_warning(obs)) + "\n")
        if obs.record.write_error:
            note = _("warning: {name}: {error} (its shim supervises on and retries)")
            sys.stderr.write(note.format(name=obs.label, error=obs.record.write_error) + "\n")
    if not observations:
        sys.stdout.write(_("no servers configured (see `mcpctl list`, or pass -f mcpctl.toml)") + "\n")
        return
    rows = [
        [
            obs.label,
            state_text(obs),
            str(obs.pid or "-"),
            duration(obs.uptime_s),
            str(obs.record.restarts),
            f"{obs.record.consecutive_failures}/{obs.record.total_failures}",
            str(obs.record.server_info.get("protocol_version") or "-"),
            _last_error(obs),
        ]
        for obs in observations
    ]
    styles = {_(state): style for state, style in STATE_STYLE.items()}
    table(
        ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "FAILURES", "PROTOCOL", "LAST ERROR"],
        rows,
        styles={1: styles},
    )
    drifted = [obs.name for obs in observations if obs.config_drift in (Drift.CHANGED, Drift.REMOVED)]
    if drifted:
        hint = _("config changed for {names}: run `mcpctl apply` (`mcpctl apply --dry-run` shows what it would do)")
        sys.stderr.write(hint_line(hint.format(names=", ".join(drifted))) + "\n")


_DRIFT = {
    Drift.CHANGED: N_(" (config changed, run mcpctl apply)"),
    Drift.REMOVED: N_(" (not in config, run mcpctl apply)"),
    Drift.FOREIGN: N_(" (started from another config file)"),  # which apply leaves running
}
# The states as a person reads them (records and --json keep the English words).
CHECK_WORDS = (N_("ok"), N_("not running"), N_("unresponsive"))  # `check`'s statuses (health.KNOWN: details)
STATE_WORDS = (N_("stopped"), N_("starting"), N_("ready"), N_("unhealthy"), N_("stopping"), N_("backoff"), N_("failed"))


def _warning(obs: Observation) -> str:
    """`obs.warning` in the user's language: a damaged record's (WARNINGS), then what a lost shim left
    running, known by its own pid and name (never matched by a template, which would translate a name
    that is also a msgid, such as `failed`)."""
    from mcpctl.control.observe import ALSO, UNATTENDED, WARNINGS  # loaded already: obs came from it

    text = obs.warning or ""
    said = UNATTENDED.format(pid=obs.pid, name=obs.name)
    if obs.pid is None or not text.endswith(said):
        return translate(text, WARNINGS)
    unattended = fill(_(UNATTENDED), {"pid": str(obs.pid), "name": obs.name})
    first = text.removesuffix(said).removesuffix("; ")
    return fill(_(ALSO), {"warning": translate(first, WARNINGS), "also": unattended}) if first else unattended


def state_text(obs: Observation) -> str:
    drift = _(_DRIFT[obs.config_drift]) if obs.config_drift in _DRIFT else ""
    drift += _(" (orphaned: its config file is gone)") if obs.orphaned else ""
    left = duration(obs.cooldown_left)
    if obs.state == ServerState.BACKOFF:
        return _("backoff (retry in {left})").format(left=left) + drift
    if obs.state == ServerState.FAILED and obs.cooldown_left:
        return _("failed (cooldown {left})").format(left=left)
    if obs.record.per_client is not None and obs.state in (ServerState.READY, ServerState.UNHEALTHY):
        clients = _("{state} (per-client: {count} running)").format(state=_(obs.state), count=obs.record.per_client)
        return clients + drift
    return _(obs.state) + drift


def _last_error(obs: Observation) -> str:
    from mcpctl.control.observe import STOPPED_LOST  # loaded already: the observation came from it

    error = obs.current_error
    return f"{error.type.value}: {failure_text(error.type, error.message, '', STOPPED_LOST)[0]}" if error else ""


STATE_STYLE: dict[str, str] = {
    ServerState.READY: "green",
    ServerState.STARTING: "yellow",
    ServerState.BACKOFF: "yellow",
    ServerState.UNHEALTHY: "red",
    ServerState.UNRESPONSIVE: "red",
    ServerState.STOPPING: "yellow",
    ServerState.FAILED: "red",
    ServerState.STOPPED: "dim",
}


def start(results: list[StartResult], as_json: bool, quiet: bool = False) -> None:
    """Each result on stdout, or all of them as JSON there; what went wrong on stderr either way, as
    every command's errors are."""
    if as_json:
        emit_json({"results": [_start_json(r) for r in results]})
    for result in results:
        obs = result.observation
        if (quiet or as_json) and result.ok:
            continue
        if result.outcome == StartOutcome.STARTED:
            elapsed = f"{result.elapsed_s:.2f}"
            say(
                _("{name}: ready in {elapsed}s (pid {pid})").format(
                    name=result.name, elapsed=elapsed, pid=obs.pid or "-"
                )
            )
        elif result.outcome == StartOutcome.SPAWNED:
            say(_("{name}: starting (not waiting for ready; see `mcpctl status {name}`)").format(name=result.name))
        elif result.outcome == StartOutcome.ALREADY_RUNNING:
            line = _("{name}: already {state} (pid {pid})")
            say(line.format(name=result.name, state=_(obs.state), pid=obs.pid or "-"))
        elif result.outcome == StartOutcome.SKIPPED:
            _skipped(result)
        elif result.outcome == StartOutcome.ENV_INVALID:
            _env_refused(result)
        else:
            _start_failure(result)


def _env_refused(result: StartResult) -> None:
    failure = result.error
    assert failure is not None
    from mcpctl.config.environment import KNOWN

    line = _("error: {name}: environment check failed, nothing was started [{type}]")
    sys.stderr.write(line.format(name=result.name, type=failure.type.value) + "\n")
    prefix = KINDS[ErrorType.ENV_MISSING].template.format(name=result.name, detail="")  # "NAME: missing environment: "
    for problem in failure.message.removeprefix(prefix).split("; "):
        sys.stderr.write(f"  - {translate(problem, KNOWN)}\n")
    hint = _("{hint}; see `mcpctl env check {name}`").format(hint=_(failure.hint), name=result.name)
    sys.stderr.write(hint_line(hint) + "\n")


def _skipped(result: StartResult) -> None:
    failure = result.error
    assert failure is not None
    message, hint = failure_text(failure.type, failure.message, failure.hint)
    sys.stderr.write(_("skipped: {message}").format(message=message) + "\n")
    if hint:
        sys.stderr.write(hint_line(hint) + "\n")


def _start_failure(result: StartResult) -> None:
    failure = result.error
    message, hint = failure_text(failure.type, failure.message, failure.hint) if failure else (_("no reason"), "")
    kind = f" [{failure.type.value}]" if failure else ""
    line = _("error: {name} did not become ready{type}: {message}")
    sys.stderr.write(line.format(name=result.name, type=kind, message=message) + "\n")
    if result.stderr_tail:
        sys.stderr.write(_("  last {count} line(s) of its stderr:").format(count=len(result.stderr_tail)) + "\n")
        for line in result.stderr_tail:
            sys.stderr.write(f"  | {line}\n")
    obs = result.observation
    if obs.state == ServerState.BACKOFF:
        record = obs.record
        line = _("  retrying in {left}s (failure {failures}; `mcpctl stop {name}` to give up)")
        left = f"{obs.cooldown_left:.1f}"
        sys.stderr.write(line.format(left=left, failures=record.consecutive_failures, name=result.name) + "\n")
    if hint:
        sys.stderr.write(hint_line(hint) + "\n")


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
        if result.write_error:
            note = _("warning: {name}: stopped, but its record could not be written: {error}")
            sys.stderr.write(note.format(name=result.name, error=result.write_error) + "\n")
        if result.outcome == StopOutcome.NOT_RUNNING:
            say(_("{name}: not running").format(name=result.name))
            continue
        ended = _("; ended {count} leftover process(es)") if result.leftovers_ended else ""
        line = _("{name}: stopped in {elapsed}s{extra}")
        elapsed = f"{result.elapsed_s:.2f}"
        say(line.format(name=result.name, elapsed=elapsed, extra=ended.format(count=result.leftovers_ended)))


def _stop_json(result: StopResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "outcome": result.outcome,
        "elapsed_s": result.elapsed_s,
        "leftovers_ended": result.leftovers_ended,
        "write_error": result.write_error,
    }


def forgotten(results: list[Forgotten], as_json: bool) -> None:
    if as_json:
        rows = [{"name": r.name, "removed": list(r.removed), "skipped": r.kept_because} for r in results]
        emit_json({"results": rows})
        return
    if not results:
        say(_("nothing to forget"))
    for result in results:
        if result.kept_because:
            say(_("{name}: kept: it {reason}").format(name=result.name, reason=_(result.kept_because)))
        else:
            line = _("{name}: forgotten ({count} file(s) and folder(s) removed)")
            say(line.format(name=result.name, count=len(result.removed)))


def check(verdicts: list[Verdict], as_json: bool, nagios: bool) -> None:
    if as_json:
        emit_json({"ok": all(v.status == "ok" for v in verdicts), "servers": [v.to_json() for v in verdicts]})
        return
    if nagios:
        from mcpctl.health import nagios_level, nagios_level_of

        bad = sorted((v for v in verdicts if v.status != "ok"), key=nagios_level_of, reverse=True)  # worst first
        summary = "; ".join(f"{v.name} {v.status}: {v.detail}" for v in bad)
        ready = f"{len(verdicts)} server(s) ready" if verdicts else "no servers to check"
        say(f"MCPCTL {nagios_level(verdicts).name} - {summary or ready}")
        return
    from mcpctl.health import KNOWN

    for v in verdicts:
        say(f"{v.name}: {_(v.status.replace('_', ' '))} ({translate(v.detail, KNOWN)})")


def nagios_unknown(exc: MCPCtlError) -> None:
    """`check --nagios` that could not check: the plugin's one line on stdout (what the monitor shows)."""
    say(f"MCPCTL UNKNOWN - {'; '.join(exc.details) or exc.message}")
    sys.stdout.flush()  # before the error's lines on stderr, should the monitor read both as one stream


def server_list(config: Config, as_json: bool) -> None:
    rows = _list_rows(config)
    if as_json:
        emit_json({"config": str(config.path) if config.path else None, "servers": rows})
        return
    if not rows:
        say(_("no servers configured"))
        return
    _list_table([(row["name"], row) for row in rows])


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
        say(_("no servers configured in any project"))
        return
    _list_table([(f"{project}/{row['name']}", row) for project, rows in groups.items() for row in rows])


def _list_table(labelled: list[tuple[str, dict[str, Any]]]) -> None:
    """One row a server; the command (or url) last, since it is the long one. ENV: names, never values."""
    rows = [
        [
            label,
            row["transport"],
            ", ".join(row["env"]) or "-",
            row["url"] or " ".join([row["command"] or "", *row["args"]]),
        ]
        for label, row in labelled
    ]
    table(["NAME", "TRANSPORT", "ENV", "COMMAND"], rows)


def _list_rows(config: Config) -> list[dict[str, Any]]:
    from mcpctl.config.views import config_hash
    from mcpctl.redaction import Redactor

    return [
        {
            "name": s.name,
            "transport": s.transport,
            "command": s.command,
            "args": [Redactor(s.env.values())(arg) for arg in s.args],
            "url": Redactor(s.env.values())(s.url) if s.url else s.url,
            "cwd": s.cwd,
            "env": sorted(s.env),  # names only: values may be secrets
            "startup_timeout": s.startup_timeout,
            "stop_timeout": s.stop_timeout,
            "config_hash": config_hash(config, s),
        }
        for s in config.servers.values()
    ]
