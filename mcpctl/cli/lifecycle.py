"""The lifecycle commands: start, stop, restart, status and check."""

from __future__ import annotations

from typing import Annotated

import typer

from mcpctl.cli.app import (
    All,
    AllProjects,
    Force,
    Json,
    Names,
    app,
    positive_seconds,
)
from mcpctl.hot import lifecycle
from mcpctl.hot import options as opt

ReadyTimeout = Annotated[
    float | None,
    typer.Option(*opt.READY_TIMEOUT.flags, help=opt.READY_TIMEOUT.help, callback=positive_seconds),
]
StopTimeout = Annotated[
    float | None, typer.Option(*opt.STOP_TIMEOUT.flags, help=opt.STOP_TIMEOUT.help, callback=positive_seconds)
]


@app.command()
def start(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    timeout: ReadyTimeout = None,
    no_wait: Annotated[bool, typer.Option(*opt.NO_WAIT.flags, help=opt.NO_WAIT.help)] = False,
    force: Force = False,
    as_json: Json = False,
) -> None:
    """Start servers and wait until each completed the MCP initialize handshake."""
    raise typer.Exit(lifecycle.start(ctx.obj, names, everything, timeout, as_json, wait=not no_wait, force=force))


@app.command()
def stop(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    timeout: StopTimeout = None,
    as_json: Json = False,
) -> None:
    """Stop servers gracefully, with their whole process tree; returns when nothing is left."""
    raise typer.Exit(lifecycle.stop(ctx.obj, names, everything, timeout, as_json))


@app.command()
def restart(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    timeout: ReadyTimeout = None,
    force: Force = False,
    as_json: Json = False,
) -> None:
    """Stop, then start servers (a stopped server is simply started)."""
    raise typer.Exit(lifecycle.start(ctx.obj, names, everything, timeout, as_json, restart=True, force=force))


@app.command()
def status(ctx: typer.Context, names: Names = None, all_projects: AllProjects = False, as_json: Json = False) -> None:
    """Show each server's state, reconciled with the real processes. Exit 3 if a named one is not running.

    The current project's servers (PROJECT/NAME names another's); -A every project's, as PROJECT/NAME.
    """
    from mcpctl.hot import commands

    raise typer.Exit(commands.status(ctx.obj, names, all_projects, as_json))


@app.command()
def check(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    nagios: Annotated[bool, typer.Option(*opt.NAGIOS.flags, help=opt.NAGIOS.help)] = False,
    as_json: Json = False,
) -> None:
    """For cron and CI: exit 0 if every server is ready and healthy, 6 if one is unhealthy or unresponsive, 3 if
    one is not running.

    Without names: the config's servers (`mcpctl forget` drops the records of others); exit 2 when no config
    is found or it has none. Starts nothing and takes no lock.
    """
    from mcpctl.hot import commands

    raise typer.Exit(commands.check(ctx.obj, names, everything, nagios, as_json))
