"""The commands that use a server's shared MCP session through its shim: connect, tools, call, ping.
Their bodies are in hot/session.py (the hot path runs them without typer)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcpctl.cli.app import Json, Name, app, positive_seconds
from mcpctl.hot import options as opt
from mcpctl.hot import session
from mcpctl.hot.options import DEFAULTS

NoStart = Annotated[bool, typer.Option(*opt.NO_START.flags, help=opt.NO_START.help)]
Timeout = Annotated[float, typer.Option(*opt.TIMEOUT.flags, help=opt.TIMEOUT.help, callback=positive_seconds)]
Retries = Annotated[int, typer.Option(*opt.RETRIES.flags, help=opt.RETRIES.help, min=0)]
Unmasked = Annotated[bool, typer.Option(*opt.UNMASKED.flags, help=opt.UNMASKED.help)]
Drain = Annotated[bool, typer.Option(*opt.DRAIN.flags, help=opt.DRAIN.help)]


@app.command()
def connect(ctx: typer.Context, name: Name, no_start: NoStart = False, drain: Drain = False) -> None:
    """Bridge stdin/stdout to NAME's shared session, for any MCP client.

    Use it as the server command in Claude Desktop, Cursor or VS Code:
    {"command": "mcpctl", "args": ["-f", "/path/to/mcpctl.toml", "connect", "PROJECT/NAME"]}
    (`mcpctl client setup` writes these). PROJECT/NAME works from any directory once the server ran.
    Messages about starting go to stderr; stdout carries only MCP. When NAME cannot be started or
    reached, the client's first request is answered with the reason as a JSON-RPC error. The end of
    stdin is a disconnect (what is in flight is cancelled), unless --drain; so is the client's death.
    The client keeps its session when the shim is replaced: the bridge reconnects and replays its
    initialize.
    """
    raise typer.Exit(session.connect(ctx.obj, name, no_start, drain))


@app.command()
def tools(
    ctx: typer.Context,
    name: Name,
    no_start: NoStart = False,
    timeout: Timeout = DEFAULTS["tools"][0],
    retries: Retries = DEFAULTS["tools"][1],
    as_json: Json = False,
    unmasked: Unmasked = False,
) -> None:
    """List NAME's tools with their arguments (* marks a required one)."""
    raise typer.Exit(session.tools(ctx.obj, name, session.Options(no_start, timeout, retries, as_json, unmasked)))


@app.command()
def call(
    ctx: typer.Context,
    name: Name,
    tool: Annotated[str, typer.Argument(help="Tool name (see `mcpctl tools NAME`).", show_default=False)],
    pairs: Annotated[
        list[str] | None, typer.Argument(help="Arguments as key=value, typed by the tool's schema.", show_default=False)
    ] = None,
    args_json: Annotated[str | None, typer.Option(*opt.ARGS.flags, help=opt.ARGS.help)] = None,
    no_start: NoStart = False,
    timeout: Timeout = DEFAULTS["call"][0],
    retries: Retries = DEFAULTS["call"][1],
    as_json: Json = False,
    unmasked: Unmasked = False,
) -> None:
    """Call one of NAME's tools and print its result. Exit 10 when the tool reports an error."""
    options = session.Options(no_start, timeout, retries, as_json, unmasked)
    raise typer.Exit(session.call(ctx.obj, name, tool, pairs or [], args_json, options))


@app.command()
def ping(
    ctx: typer.Context,
    name: Name,
    no_start: NoStart = False,
    timeout: Timeout = DEFAULTS["ping"][0],
    retries: Retries = DEFAULTS["ping"][1],
    as_json: Json = False,
) -> None:
    """Send an MCP ping through the shared session and print the round trip."""
    raise typer.Exit(session.ping(ctx.obj, name, session.Options(no_start, timeout, retries, as_json)))
