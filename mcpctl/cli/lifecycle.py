"""The lifecycle commands: start, stop, restart, status and check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import (
    All,
    AllProjects,
    Force,
    Globals,
    Json,
    Names,
    app,
    known_servers,
    positive_seconds,
    require_names,
)
from mcpctl.constants import ExitCode
from mcpctl.hot import options as opt
from mcpctl.i18n import _
from mcpctl.states import StartOutcome

ReadyTimeout = Annotated[
    float | None,
    typer.Option(help="Seconds to wait for ready (default: startup_timeout).", callback=positive_seconds),
]
StopTimeout = Annotated[
    float | None,
    typer.Option(help="Seconds between SIGTERM and SIGKILL (default: stop_timeout).", callback=positive_seconds),
]
if TYPE_CHECKING:
    from mcpctl.config.model import Config, ServerConfig
    from mcpctl.control.results import StartResult
    from mcpctl.paths import Paths


@app.command()
def start(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    timeout: ReadyTimeout = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once the shim runs; do not wait for ready.")
    ] = False,
    force: Force = False,
    as_json: Json = False,
) -> None:
    """Start servers and wait until each completed the MCP initialize handshake."""
    _start(ctx.obj, names, everything, timeout, as_json, wait=not no_wait, force=force)


@app.command()
def stop(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    timeout: StopTimeout = None,
    as_json: Json = False,
) -> None:
    """Stop servers gracefully, with their whole process tree; returns when nothing is left."""
    from mcpctl.control.controller import Controller, with_timeouts
    from mcpctl.render import servers as render

    g: Globals = ctx.obj
    require_names(names, everything)
    t = g.target(names)
    servers = with_timeouts(known_servers(t.paths, t.config, t.names, everything), stop=timeout)
    results = Controller(t.paths, t.config).stop(servers)
    if as_json or not g.quiet:
        render.stop(results, as_json)


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
    _start(ctx.obj, names, everything, timeout, as_json, restart=True, force=force)


def _start(
    g: Globals,
    names: list[str] | None,
    everything: bool,
    timeout: float | None,
    as_json: bool,
    *,
    wait: bool = True,
    restart: bool = False,
    force: bool = False,
) -> None:
    require_names(names, everything)
    t = g.target(names, required=True)
    servers = t.config.select(t.names, everything)  # --timeout bounds our wait, not the shims' startup_timeout
    gateway = everything and not restart  # `start --all` starts the gateway too, when one is configured
    start_and_render(
        g,
        t.paths,
        t.config,
        servers,
        as_json,
        wait=wait,
        restart=restart,
        force=force,
        timeout=timeout,
        gateway=gateway,
    )


def start_and_render(
    g: Globals,
    paths: Paths,
    config: Config,
    servers: list[ServerConfig],
    as_json: bool,
    *,
    wait: bool = True,
    restart: bool = False,
    force: bool = False,
    timeout: float | None = None,
    gateway: bool = False,
) -> None:
    """Start (or restart) `servers`, show the results, and exit with the code the outcomes call for;
    `timeout` bounds this command's wait only; `gateway`: start the configured gateway too."""
    from mcpctl.control.controller import Controller
    from mcpctl.render import servers as render
    from mcpctl.render.progress import Waiting

    controller = Controller(paths, config)
    label = (_("restarting {names}") if restart else _("starting {names}")).format(
        names=", ".join(s.name for s in servers)
    )
    with Waiting(label, enabled=wait and not g.quiet):
        begin = controller.restart if restart else controller.start
        results = begin(servers, wait=wait, force=force, timeout=timeout)
    render.start(results, as_json, quiet=g.quiet)
    if gateway and config.gateway is not None and config.path is not None:
        _start_gateway(g, paths, config.path, as_json)
    exit_for(results)


def exit_for(results: list[StartResult]) -> None:
    """Exit with the code the start outcomes call for (none: return)."""
    outcomes = {r.outcome for r in results}
    if StartOutcome.FAILED in outcomes:
        raise typer.Exit(ExitCode.START_FAILED)
    if StartOutcome.ENV_INVALID in outcomes:
        raise typer.Exit(ExitCode.ENV_MISSING)
    if StartOutcome.SKIPPED in outcomes:
        raise typer.Exit(ExitCode.SKIPPED)


def _start_gateway(g: Globals, paths: Paths, path: Path, as_json: bool) -> None:
    """`start --all` starts the configured gateway too (its line goes to stderr: stdout is the servers')."""
    import sys

    from mcpctl.gateway import lifecycle

    result = lifecycle.start(paths, path)
    if not g.quiet and not as_json:
        sys.stderr.write(f"gateway {result['outcome']}: {result.get('url')}\n")


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

    Without names: the config's servers (`mcpctl forget` drops the records of others). Starts nothing and
    takes no lock.
    """
    from mcpctl.hot import commands

    raise typer.Exit(commands.check(ctx.obj, names, everything, nagios, as_json))
