"""`mcpctl doctor`: what is wrong, and with --fix, repaired."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import Globals, Json, app, known_servers
from mcpctl.constants import ExitCode
from mcpctl.errors import MCPCtlError, StateDirError
from mcpctl.i18n import _, pad, translate

if TYPE_CHECKING:
    from mcpctl.control.doctor import Finding


@app.command()
def doctor(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what is safe to repair, and say what was done.")] = False,
    as_json: Json = False,
) -> None:
    """Find orphaned and zombie processes, stale sockets, records that disagree with the processes,
    damaged files, a state dir others can read, and config problems. Exit 0 when all is well (or was
    repaired), 6 when problems remain."""
    from mcpctl.control.doctor import Doctor
    from mcpctl.render import output as render

    g: Globals = ctx.obj
    paths = g.paths()
    problem = None
    try:
        config = g.load_config(required=False)
    except MCPCtlError as exc:
        from mcpctl.config.model import empty_config

        config, problem = empty_config(), exc.message
    try:
        names = [s.name for s in known_servers(paths, config, None, everything=True)]
    except StateDirError:  # something planted in the state dir: what examine reports first, reading nothing
        names = []
    doc = Doctor(paths, names, problem)
    findings = doc.examine()
    if fix:
        doc.fix()
    remaining = [f for f in findings if not f.fixed]
    if as_json:
        render.emit_json({"ok": not remaining, "findings": [f.to_json() for f in findings]})
    else:
        _show(findings, fix)
        fixed = len(findings) - len(remaining)
        summary = _("{count} problem(s), {fixed} repaired").format(count=len(findings), fixed=fixed)
        sys.stdout.write((summary if findings else _("no problems found")) + "\n")
    if remaining:
        raise typer.Exit(ExitCode.UNHEALTHY)


def _show(findings: list[Finding], fix: bool) -> None:
    """A line per finding; kinds stay English (they are the --json `kind` values), the words are translated."""
    from mcpctl.config.load import KNOWN as PROBLEMS  # a config finding's detail is a config problem
    from mcpctl.control.doctor import KNOWN

    known = (*KNOWN, *PROBLEMS)
    for f in findings:
        mark = pad(_("fixed") if f.fixed else _("FOUND"), 6)
        outcome = f" -> {translate(f.outcome, known)}" if f.outcome else ""
        if not f.outcome and f.repair is not None and not fix:
            outcome = _(" (--fix repairs it)")
        sys.stdout.write(f"{mark} {f.kind:<14} {f.subject}: {translate(f.detail, known)}{outcome}\n")
