"""`mcpctl run NAME` (the shim in the foreground) and `mcpctl resume` (start what was running)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcpctl.cli.app import Globals, Json, app
from mcpctl.cli.lifecycle import start_and_render
from mcpctl.errors import UsageError

LogFormat = Annotated[
    str,
    typer.Option("--log-format", help="How lines reach stderr: text (as in the log file) or json (one object a line)."),
]


@app.command()
def run(ctx: typer.Context, name: Annotated[str, typer.Argument(help="A server name from the config.")],
        log_format: LogFormat = "text") -> None:  # fmt: skip
    """Run a server's shim in the foreground: for systemd (Type=notify) or a container's entrypoint.

    Logs go to the log file and to stderr; SIGTERM or SIGINT stop it gracefully. Exit 0 when stopped,
    4 when it gave up (crash loop, failed start), 7 env invalid, 9 when the server already runs.
    """
    from mcpctl.control.controller import Controller
    from mcpctl.control.foreground import become_shim
    from mcpctl.shim.foreground import LOG_FORMATS

    if log_format not in LOG_FORMATS:
        raise UsageError(f"--log-format: expected one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    g: Globals = ctx.obj
    config = g.load_config()
    (server,) = config.select([name], everything=False)
    become_shim(Controller(g.paths(), config), server, log_format)


@app.command()
def resume(ctx: typer.Context, as_json: Json = False) -> None:
    """Start every configured server that was last wanted running (started, and not stopped by a person).

    For login or boot (`mcpctl service install`): a crash, a SIGKILL or a reboot does not change what
    was wanted; `mcpctl stop` does. Exit codes as for `start`; 0 when nothing was to resume.
    """
    from mcpctl.control.wishes import resumable

    g: Globals = ctx.obj
    config = g.load_config()
    names = resumable(g.paths(), list(config.servers))
    if not names:
        if as_json:
            typer.echo('{"results": []}')
        elif not g.quiet:
            typer.echo("nothing to resume: no configured server was last wanted running")
        return
    start_and_render(g, g.paths(), config, config.select(names, everything=False), as_json)
