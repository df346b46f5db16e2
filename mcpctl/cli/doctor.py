"""`mcpctl doctor`: what is wrong, and with --fix, repaired."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mcpctl.cli.app import Globals, Json, app, known_servers
from mcpctl.constants import ExitCode
from mcpctl.errors import MCPCtlError


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
    names = [s.name for s in known_servers(paths, config, None, everything=True)]
    doc = Doctor(paths, names, problem)
    findings = doc.examine()
    if fix:
        doc.fix()
    remaining = [f for f in findings if not f.fixed]
    if as_json:
        render.emit_json({"ok": not remaining, "findings": [f.to_json() for f in findings]})
    else:
        for f in findings:
            mark = "fixed" if f.fixed else "FOUND"
            outcome = f" -> {f.outcome}" if f.outcome else ("" if f.repair is None or fix else " (--fix repairs it)")
            sys.stdout.write(f"{mark}  {f.kind:<14} {f.subject}: {f.detail}{outcome}\n")
        fixed = len(findings) - len(remaining)
        summary = "no problems found" if not findings else f"{len(findings)} problem(s), {fixed} repaired"
        sys.stdout.write(summary + "\n")
    if remaining:
        raise typer.Exit(ExitCode.UNHEALTHY)
