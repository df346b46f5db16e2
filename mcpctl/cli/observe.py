"""What the servers do now: alerts, metrics, the live table, and the configured list."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mcpctl.cli.app import AllProjects, Globals, Json, Name, app, known_servers, positive_seconds
from mcpctl.errors import MCPCtlError, UsageError
from mcpctl.i18n import _
from mcpctl.states import SERVING


@app.command("alerts")
def alerts_list(ctx: typer.Context, as_json: Json = False) -> None:
    """Alerts firing now, on every server (fired and resolved ones are events in events.jsonl)."""
    from mcpctl.control.controller import Controller
    from mcpctl.render import watch as render

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    names = [s.name for s in known_servers(paths, config, None, everything=True)]
    observations = Controller(paths, config).status(names, repair=False)
    firing = [{"server": o.name, **a} for o in observations if o.state in SERVING for a in o.record.alerts]
    render.alerts(firing, as_json)


@app.command()
def metrics(
    ctx: typer.Context,
    name: Name,
    since: Annotated[str, typer.Option(help="How far back: 30s, 10m, 2h, 1d.")] = "10m",
    as_json: Json = False,
) -> None:
    """Resource samples of the server's whole process tree: CPU, memory, fds, threads, ping latency."""
    import time

    from mcpctl import metrics as store
    from mcpctl.render import watch as render

    g: Globals = ctx.obj
    t = g.target([name])
    paths, name = t.paths, t.names[0]
    known_servers(paths, t.config, [name], everything=False)
    try:
        window = store.parse_duration(since)
    except ValueError:
        raise UsageError(_(store.NOT_A_DURATION).format(text=since), _("for example --since 10m")) from None
    samples = store.read(paths.server_dir(name) / "metrics.jsonl", since=time.time() - window)
    render.metrics(name, samples, as_json)


@app.command()
def top(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", callback=positive_seconds)] = 1.0,
) -> None:
    """A live table of every server: state, CPU, memory, ping, restarts. q or Ctrl-C quits.

    When stdout is not a terminal, prints one snapshot.
    """
    from mcpctl.control.controller import Controller
    from mcpctl.render import watch as render

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    supervisor = Controller(paths, config)
    names = [s.name for s in known_servers(paths, config, None, everything=True)]
    render.top(lambda: supervisor.status(names, repair=False), interval)


@app.command("list")
def list_servers(
    ctx: typer.Context,
    names_only: Annotated[
        bool,
        typer.Option(
            "--names", help="Only the names, one per line, then other projects' as PROJECT/NAME (for completion)."
        ),
    ] = False,
    all_projects: AllProjects = False,
    as_json: Json = False,
) -> None:
    """List the configured servers (env values are never shown, only their names); -A every project's."""
    from mcpctl.control import projects
    from mcpctl.render import servers as render

    g: Globals = ctx.obj
    if names_only:
        try:
            sys.stdout.write("".join(f"{name}\n" for name in projects.every_name(g.target())))
        except MCPCtlError:
            return  # completion asks this on every TAB: a broken config completes nothing, quietly
        return
    if all_projects:
        render.project_lists(projects.configs(g.target()), as_json)
        return
    render.server_list(g.load_config(), as_json)
