"""What the config commands show: plans, outcomes, diffs, history, imports; text or JSON.

Secrets are sealed before anything reaches this module, and shown as *** (impact.shown).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from mcpctl.config.history import Version
from mcpctl.config.impact import GATEWAY, STATE_DIR, FieldChange, ServerChange, shown
from mcpctl.config.load import KNOWN as PROBLEMS
from mcpctl.config.model import TOP_LEVEL, Config, Problem
from mcpctl.control.apply import KNOWN, Action, Outcome
from mcpctl.i18n import N_, _, failure_text, kept, translate
from mcpctl.render.output import emit_json, hint_line, table

_SIGN = {"added": "+", "removed": "-", "changed": "~"}
_TABLE = {"gateway": "[gateway]", "groups": "[groups.*]"}  # how a note names a top-level key
GATEWAY_NOTE = N_(
    "the gateway reads [gateway] and [groups.*] as it starts: `mcpctl gateway restart` takes the change; "
    "apply leaves the gateway alone"
)
STATE_DIR_NOTE = N_(
    "project and home choose these servers' state dir (home only when neither --home nor $MCPCTL_HOME "
    "names one): those running now stay in the old one, out of this config's sight: stop them first"
)
_NEEDS = {
    "update": N_("update in place"),
    "none": N_("no restart"),
    "start": N_("apply starts it"),
    "stop": N_("apply stops it"),
    GATEWAY: N_("gateway restart"),
    STATE_DIR: N_("new state dir"),
}


def validated(path: Path, config: Config | None, problems: list[Problem], as_json: bool) -> None:
    if as_json:
        servers = sorted(config.servers) if config else []
        emit_json(
            {"ok": not problems, "config": str(path), "servers": servers, "problems": [p.to_json() for p in problems]}
        )
        return
    if config is not None:
        names = ", ".join(config.servers) or _("none")
        _say(_("ok: {path}: {count} server(s): {names}").format(path=path, count=len(config.servers), names=names))
        return
    for problem in problems:
        sys.stderr.write(_("error: {line}").format(line=translate(problem.text, PROBLEMS)) + "\n")
    sys.stderr.write(_("{count} problem(s) in {path}").format(count=len(problems), path=path) + "\n")


def plan(path: Path, actions: list[Action], last: Version | None, as_json: bool) -> None:
    if as_json:
        emit_json({"config": str(path), "dry_run": True, "plan": [a.to_json() for a in actions], "results": []})
        return
    since = _("last applied: version {id}").format(id=last.id) if last else _("nothing applied before")
    _say(_("plan for {path} ({since}):").format(path=path, since=since))
    _plan_lines(actions)
    _say(_("dry run: nothing was changed"))


def _plan_lines(actions: list[Action]) -> None:
    acting = [a for a in actions if a.kind not in ("unchanged", "not_running", "foreign")]
    width = max((len(a.name) for a in acting), default=0)
    for action in acting:
        _say(f"  {action.kind:<8} {action.name:<{width}}  {translate(action.reason, KNOWN)}")
        for change in action.fields:
            _say(f"      {_change_line(change)}")
    for kind, label in (
        ("unchanged", _("unchanged")),
        ("not_running", _("not running, left as they are")),
        ("foreign", _("started from another config file, left running")),
    ):
        names = [a.name for a in actions if a.kind == kind]
        if names:
            _say("  " + _("{label}: {names}").format(label=label, names=", ".join(names)))
    if not acting:
        _say("  " + _("nothing to do: what runs matches the config"))


def applied(path: Path, actions: list[Action], outcomes: list[Outcome], version: Version | None, as_json: bool) -> None:
    summary = version.summary() if version else None
    if as_json:
        results = [o.to_json() for o in outcomes]
        emit_json(
            {
                "config": str(path),
                "dry_run": False,
                "plan": [a.to_json() for a in actions],
                "results": results,
                "version": summary,
            }
        )
        return
    _say(_("apply {path}:").format(path=path))
    _plan_lines(actions)
    for outcome in outcomes:
        action = outcome.action
        if outcome.ok:
            _say(_("{label}: {names}").format(label=action.name, names=_detail(outcome)))
        else:
            failed = _("{name}: {kind} failed: {detail}")
            line = failed.format(name=action.name, kind=action.kind, detail=_detail(outcome))
            sys.stderr.write(_("error: {line}").format(line=line) + "\n")
    if version is not None:
        _say(_("applied {path} as version {id}").format(path=path, id=version.id))
    elif outcomes:
        _say(_("applied {path} (unchanged since the last version)").format(path=path))


def _detail(outcome: Outcome) -> str:
    """What an action did, in the user's language: a start's failure through its type's template."""
    error = getattr(outcome.result, "error", None)
    if error is None:
        return translate(outcome.detail, KNOWN)
    from mcpctl.config.environment import KNOWN as ENV

    message = failure_text(error.type, error.message, "", ENV)[0]
    words = outcome.detail.removesuffix(error.message).removesuffix(": ")  # "env invalid", or none
    return _("{label}: {names}").format(label=_(words), names=message) if words else message


def diff(
    labels: tuple[str, str],
    changes: list[ServerChange],
    shared: list[FieldChange],
    unknown: list[tuple[int | None, tuple[str, ...]]],
    as_json: bool,
) -> None:
    """`shared`: the changes outside [servers.*]; `unknown`: per version, the keys it never recorded."""
    if as_json:
        emit_json(
            {
                "from": labels[0],
                "to": labels[1],
                "servers": [c.to_json() for c in changes],
                "global": [c.to_json() for c in shared],
                "not_compared": [key for key in TOP_LEVEL if any(key in keys for _id, keys in unknown)],
            }
        )
        return
    _say(f"--- {labels[0]}\n+++ {labels[1]}")
    _server_changes(changes, "")
    _outside(shared, "")
    _meaning(shared)
    for version, keys in unknown:
        tables = ", ".join(_TABLE.get(key, key) for key in keys)
        note = _("not compared: {tables} (version {id} was recorded by an older mcpctl, which did not keep them)")
        _note(note.format(tables=tables, id=version))
    if not changes and not shared:
        _say(_("no differences in what both recorded") if unknown else _("no differences"))


def history(versions: list[Version], current_hash: str | None, as_json: bool) -> None:
    if as_json:
        emit_json({"versions": [{**v.summary(), "matches_file": v.hash == current_hash} for v in versions]})
        return
    if not versions:
        _say(_("no config version applied yet (`mcpctl apply` records one)"))
        return
    rows = [
        [
            f"{v.id}{' *' if v.hash == current_hash else ''}",
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.time)),
            v.user,
            v.hash,
            str(len(v.views)),
            v.note,
        ]
        for v in versions
    ]
    table(["VERSION", "APPLIED", "USER", "HASH", "SERVERS", "NOTE"], rows)
    if current_hash in {v.hash for v in versions}:
        _say(_("* the config file holds this version now"))


def imported(
    source: Path,
    target: Path,
    changes: list[ServerChange],
    shared: list[FieldChange],
    untouched: tuple[list[str], list[str]],
    notes: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
) -> None:
    """`shared`: what changes outside [servers.*] ([gateway], [groups.*], the global tables, project, home);
    `untouched`: the servers as they were, and those added or changed while disabled (`enabled = false`:
    nothing runs them, so no change of what runs)."""
    unchanged, dormant = untouched
    if as_json:
        emit_json(
            {
                "source": str(source),
                "config": str(target),
                "dry_run": dry_run,
                "changes": [c.to_json() for c in changes],
                "global": [c.to_json() for c in shared],
                "unchanged": unchanged,
                "disabled": dormant,
                "notes": list(notes),
            }
        )
        return
    _say(_("import {source} into {target}:").format(source=source, target=target))
    _server_changes(changes, "  ")
    _outside(shared, "  ")
    for name in dormant:
        _say("  + " + _("{name} (written with enabled = false: apply leaves it)").format(name=name))
    if unchanged:
        _say("  = " + _("{label}: {names}").format(label=_("unchanged"), names=", ".join(unchanged)))
    _meaning(shared)
    from mcpctl.config.importer import NOTES  # loaded already: the import made the notes

    for note in notes:
        _note(kept(note, NOTES))
    if dry_run:
        _say(_("dry run: nothing was written"))


def written(path: Path, backup: Path | None, what: str) -> None:
    """`what`: the verb, translated ("wrote")."""
    kept = _(" (the previous file is {backup})").format(backup=backup) if backup else ""
    sys.stderr.write(f"{what} {path}{kept}\n")
    sys.stderr.write(hint_line(_("run `mcpctl apply` to start, restart and update what changed")) + "\n")


def _server_changes(changes: list[ServerChange], indent: str) -> None:
    for change in changes:
        _say(f"{indent}{_SIGN[change.kind]} {change.name} ({change.kind}; {_need(change.impact)})")
        for field in change.fields:
            _say(f"{indent}    {_change_line(field)}")


def _outside(changes: list[FieldChange], indent: str) -> None:
    """The changes outside the servers, one `*` line each."""
    for field in changes:
        _say(f"{indent}* {_change_line(field)}")


def _meaning(changes: list[FieldChange]) -> None:
    """What a change of the gateway's tables or of the state dir means for what runs, said once."""
    needs = {field.impact for field in changes}
    if GATEWAY in needs:
        _note(_(GATEWAY_NOTE))
    if STATE_DIR in needs:
        _note(_(STATE_DIR_NOTE))


def _note(text: str) -> None:
    _say(_("note: {text}").format(text=text))


def _change_line(change: FieldChange) -> str:
    before, after = _value(change.before), _value(change.after)
    return f"{change.field}: {before} -> {after}  [{_need(change.impact)}]"


def _need(impact: str) -> str:
    return _(_NEEDS.get(impact, impact))


def _value(value: Any) -> str:
    return _("(unset)") if value is None else json.dumps(shown(value))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
