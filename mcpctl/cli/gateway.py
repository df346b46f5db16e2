"""`mcpctl gateway start|stop|restart|status`: the HTTP gateway over the shims' sessions."""

from __future__ import annotations

from pathlib import Path

import typer

from mcpctl.cli.app import Globals, Json, app
from mcpctl.constants import ExitCode
from mcpctl.errors import ConfigError
from mcpctl.i18n import _

gateway_app = typer.Typer(help="The HTTP gateway: the servers over streamable HTTP, with tokens.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")


def _config_path(g: Globals) -> Path:
    config = g.load_config()
    if config.gateway is None or config.path is None:
        no_table = _("{path}: no [gateway] table").format(path=config.path)
        raise ConfigError(no_table, _('add [gateway] with listen = "127.0.0.1:8765"'))
    return config.path


@gateway_app.command("start")
def start(ctx: typer.Context, as_json: Json = False) -> None:
    """Start the gateway (detached) and wait until it listens; the servers start on their first request."""
    from mcpctl.gateway import lifecycle
    from mcpctl.render import gateway as render

    g: Globals = ctx.obj
    result = lifecycle.start(g.paths(), _config_path(g))
    if as_json or not g.quiet:
        render.outcome(result, as_json)


@gateway_app.command("stop")
def stop(ctx: typer.Context, as_json: Json = False) -> None:
    """Stop the gateway; the servers keep running."""
    from mcpctl.gateway import lifecycle
    from mcpctl.render import gateway as render

    g: Globals = ctx.obj
    result = lifecycle.stop(g.paths())
    if as_json or not g.quiet:
        render.outcome(result, as_json)


@gateway_app.command("restart")
def restart(ctx: typer.Context, as_json: Json = False) -> None:
    """Stop the gateway, then start it with the config as it is now (its clients open new sessions)."""
    from mcpctl.gateway import lifecycle
    from mcpctl.render import gateway as render

    g: Globals = ctx.obj
    path = _config_path(g)
    lifecycle.stop(g.paths())
    result = lifecycle.start(g.paths(), path)
    if as_json or not g.quiet:
        render.outcome(result, as_json)


@gateway_app.command("status")
def status(ctx: typer.Context, as_json: Json = False) -> None:
    """Show whether the gateway runs, where, and since when. Exit 3 when it does not run."""
    from mcpctl.gateway import lifecycle
    from mcpctl.render import gateway as render

    g: Globals = ctx.obj
    result = lifecycle.status(g.paths())
    if as_json or not g.quiet:
        render.status(result, as_json)
    if not result["running"]:
        raise typer.Exit(ExitCode.NOT_RUNNING)
