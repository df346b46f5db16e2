"""What the client commands show: clients and their files, setup's diff and outcome, backups, drift."""

from __future__ import annotations

import sys
from pathlib import Path

from mcpctl.clients.registry import Client
from mcpctl.clients.report import ClientReport, EntryStatus
from mcpctl.clients.restore import Restored
from mcpctl.clients.setup import NOTES, REASONS, Outcome, Plan
from mcpctl.clients.store import Backup
from mcpctl.config import trust
from mcpctl.config.load import KNOWN as PROBLEMS
from mcpctl.i18n import N_, _, kept, translate
from mcpctl.render.output import emit_json, hint_line, say, table

_SHOWN = {
    "mcpctl": N_("via mcpctl"),
    "drift": N_("changed since setup"),
    "direct": N_("direct"),
    "gone": N_("removed since setup"),
}


def listing(reports: list[ClientReport], as_json: bool) -> None:
    if as_json:
        emit_json({"clients": [r.to_json() for r in reports]})
        return
    rows = []
    refused = []
    for report in reports:
        for f in report.files:
            if f.exists:
                counts = f"{f.servers}" if not f.problem else _("refused") if f.refused else _("unreadable")
                rows.append([report.client.id, f.scope, counts, str(f.through_mcpctl), _home(f.path)])
            if f.refused:
                refused.append(_refused(f.problem or "", f.refused))
    if rows:
        table(["CLIENT", "SCOPE", "SERVERS", "VIA MCPCTL", "FILE"], rows)
    sys.stderr.writelines(refused)
    missing = [r.client.id for r in reports if not r.found]
    if missing:
        say(_("not found here: {clients}").format(clients=", ".join(missing)))
    if rows:
        say(_("next: mcpctl client setup CLIENT --dry-run"))


def _refused(problem: str, hint: str) -> str:
    """A client file the trust rules refused, unread: the refusal and its way out, translated part by part."""
    note = _("note: {problem}; it was not read").format(problem=translate(problem, trust.KNOWN))
    return f"{note}\n{hint_line(translate(hint, trust.KNOWN))}\n"


def planned(plan: Plan, dry_run: bool, as_json: bool) -> None:
    if as_json:
        if dry_run:
            emit_json({**_plan_json(plan), "dry_run": True})
        return
    diff = plan.diff()
    sys.stdout.write(diff or f"{plan.client.label}: {_nothing(plan)}\n")
    for left in plan.left:
        said = _("{name} ({path}): {reason}")
        where = _home(left.entry.location.path)
        _note(said.format(name=left.entry.name, path=where, reason=translate(left.reason, REASONS + PROBLEMS)))
    for note in plan.notes:
        _note(kept(note, NOTES))
    if dry_run:
        sys.stderr.write(_("dry run: nothing was written") + "\n")


def _note(text: str) -> None:
    sys.stderr.write(_("note: {text}").format(text=text) + "\n")


def set_up(outcome: Outcome, as_json: bool) -> None:
    plan = outcome.plan
    backup = str(outcome.backup.folder) if outcome.backup else None
    if as_json:
        emit_json({**_plan_json(plan), "dry_run": False, "backup": backup})
        return
    if not plan.changes():
        return  # planned() said so
    names = ", ".join(r.server for r in plan.rewrites) or _("none")
    client = plan.client.label
    now = _("{client}: 1 entry now runs mcpctl connect ({names})")
    if len(plan.rewrites) != 1:
        now = _("{client}: {count} entries now run mcpctl connect ({names})")
    sys.stderr.write(now.format(client=client, count=len(plan.rewrites), names=names) + "\n")
    if backup:
        saved = _("backup: {folder} (`mcpctl client restore {client}` puts it back)")
        sys.stderr.write(saved.format(folder=backup, client=plan.client.id) + "\n")
    sys.stderr.write(_("restart {client} to pick the change up").format(client=client) + "\n")


def backups(client: Client, found: list[Backup], as_json: bool) -> None:
    if as_json:
        emit_json({"client": client.id, "backups": [_backup_json(b) for b in found]})
        return
    if not found:
        say(_("no backups of {client}").format(client=client.id))
        return
    table(["BACKUP", "FILES"], [[b.stamp, ", ".join(_home(p) for p, _ in b.files)] for b in found])


def restored(result: Restored, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_json())
        return
    for path in result.files:
        sys.stderr.write(_("restored {path} from backup {stamp}").format(path=path, stamp=result.backup.stamp) + "\n")


def status(entries: list[EntryStatus], as_json: bool) -> None:
    if as_json:
        emit_json({"entries": [e.to_json() for e in entries]})
        return
    if not entries:
        say(_("no client entries found"))
        return
    rows = [[e.client, e.name, _(_SHOWN[e.state]), e.server or "-", _home(e.file)] for e in entries]
    table(["CLIENT", "ENTRY", "STATE", "SERVER", "FILE"], rows)


def _nothing(plan: Plan) -> str:
    if plan.found():
        return _("nothing to change")
    return _("no config file found (looked for {files})").format(files=", ".join(_home(f.path) for f in plan.files))


def _plan_json(plan: Plan) -> dict[str, object]:
    return {
        "client": plan.client.id,
        "found": plan.found(),
        "config": str(plan.config),
        "rewritten": [
            {"name": r.entry.name, "file": str(r.entry.location.path), "scope": r.entry.scope, "server": r.server}
            for r in plan.rewrites
        ],
        "left": [{"name": x.entry.name, "file": str(x.entry.location.path), "reason": x.reason} for x in plan.left],
        "notes": list(plan.notes),
        "diff": plan.diff(),
    }


def _backup_json(backup: Backup) -> dict[str, object]:
    return {"backup": backup.stamp, "folder": str(backup.folder), "files": [str(p) for p, _ in backup.files]}


def _home(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + "/") else text
