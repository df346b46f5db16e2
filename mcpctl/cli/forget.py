"""`mcpctl forget`: drop the record, events, metrics and logs of servers that are not running."""

from __future__ import annotations

from typing import Annotated

import typer

from mcpctl.cli.app import Globals, Json, Names, app, known_servers
from mcpctl.errors import UsageError
from mcpctl.i18n import _


@app.command()
def forget(
    ctx: typer.Context,
    names: Names = None,
    all_stopped: Annotated[
        bool, typer.Option("--all-stopped", help="Every server the state dir knows that is not running.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Remove what mcpctl keeps of servers that are not running (state record, events, metrics, logs).

    A running server is refused (exit 2) and nothing is removed; --all-stopped skips running ones.
    The current project's servers; PROJECT/NAME or --project forgets another's (one whose config file is gone).
    The config file is not touched: a configured server can still be started.
    """
    from mcpctl.control.controller import Controller
    from mcpctl.control.forget import forget as forget_servers
    from mcpctl.render import servers as render

    g: Globals = ctx.obj
    if bool(names) == all_stopped:
        both = _("name the servers to forget, or pass --all-stopped (not both)")
        raise UsageError(both, _("see `{command} --help`").format(command="mcpctl forget"))
    t = g.target(names)
    paths, config = t.paths, t.config
    chosen = paths.known_servers() if all_stopped else [s.name for s in known_servers(paths, config, t.names, False)]
    named = any("/" in name for name in names or []) or g.project is not None
    prefix = f"{paths.project}/" if named and paths.project else ""
    results = forget_servers(Controller(paths, config), chosen, skip_running=all_stopped, prefix=prefix)
    if as_json or not g.quiet:
        render.forgotten(results, as_json)
