"""`mcpctl run NAME` (the shim in the foreground) and `mcpctl resume` (start what was running)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import AllProjects, Globals, Json, app, valid_name
from mcpctl.errors import MCPCtlError
from mcpctl.hot.lifecycle import exit_code, start_and_render
from mcpctl.i18n import _

if TYPE_CHECKING:
    from mcpctl.config.model import Config, ServerConfig
    from mcpctl.control.projects import Target
    from mcpctl.paths import Paths


class LogFormatChoice(StrEnum):  # a choice, so that the shells complete it (the shim's LOG_FORMATS)
    text = "text"
    json = "json"


LogFormat = Annotated[
    LogFormatChoice,
    typer.Option("--log-format", help="How lines reach stderr: text (as in the log file) or json (one object a line)."),
]


ServerName = Annotated[str, typer.Argument(help="A server name from the config.", callback=valid_name)]


@app.command()
def run(ctx: typer.Context, name: ServerName, log_format: LogFormat = LogFormatChoice.text) -> None:
    """Run a server's shim in the foreground: for systemd (Type=notify) or a container's entrypoint.

    Logs go to the log file and to stderr; SIGTERM or SIGINT stop it gracefully. Exit 0 when stopped,
    4 when it gave up (crash loop, failed start), 7 env invalid, 9 when the server already runs.
    """
    from mcpctl.control.controller import Controller
    from mcpctl.control.foreground import become_shim
    from mcpctl.shim.foreground import LOG_FORMATS

    assert log_format.value in LOG_FORMATS  # the choice's values are the shim's formats
    g: Globals = ctx.obj
    t = g.target([name], required=True)  # PROJECT/NAME too: the shim gets that project's paths
    (server,) = t.config.select(t.names, everything=False)
    become_shim(Controller(t.paths, t.config), server, log_format.value)


@app.command()
def resume(ctx: typer.Context, all_projects: AllProjects = False, as_json: Json = False) -> None:
    """Start every configured server that was last wanted running (started, and not stopped by a person).

    For login or boot (`mcpctl service install`): a crash, a SIGKILL or a reboot does not change what
    was wanted; `mcpctl stop` does. The current project's servers; -A every project's in the state dir
    (each by the config file its records name). Exit codes as for `start`; 0 when nothing was to resume.
    """
    g: Globals = ctx.obj
    t = g.target()
    plans = _plans(g, t, all_projects)
    if not plans:
        if as_json:
            typer.echo('{"results": []}')
        elif not g.quiet:
            typer.echo(_("nothing to resume: no configured server was last wanted running"))
        return
    if not all_projects:
        ((paths, config, servers),) = plans
        raise typer.Exit(start_and_render(g, paths, config, servers, as_json))
    _resume_all(g, plans, as_json)


def _plans(g: Globals, t: Target, all_projects: bool) -> list[tuple[Paths, Config, list[ServerConfig]]]:
    """For each project resumed: its paths, its config, and its servers last wanted running."""
    from mcpctl.control import projects
    from mcpctl.control.wishes import resumable

    chosen = [(t.paths, t.config)]
    if all_projects:
        chosen += [(p, c) for p in projects.every(t.paths.home) if p != t.paths and (c := _config_of(g, p))]
    plans = []
    for paths, config in chosen:
        names = resumable(paths, list(config.servers))
        if names:
            plans.append((paths, config, config.select(names, everything=False)))
    return plans


def _config_of(g: Globals, paths: Paths) -> Config | None:
    """The config file another project's records name, if it is there, loads and may be trusted."""
    from mcpctl.control import projects

    path = projects.config_file(paths)
    if path is None:
        return None
    try:
        config = projects.trusted(path, g.trust)
    except MCPCtlError as refused:
        sys.stderr.write(f"mcpctl: {paths.project}: {refused.message}\n")
        return None
    return config


def _resume_all(g: Globals, plans: list[tuple[Paths, Config, list[ServerConfig]]], as_json: bool) -> None:
    from dataclasses import replace

    from mcpctl.control.controller import Controller
    from mcpctl.render import servers as render

    results = []
    for paths, config, servers in plans:
        started = Controller(paths, config).start(servers)
        results += [replace(r, name=f"{paths.project}/{r.name}") if paths.project else r for r in started]
    render.start(results, as_json, quiet=g.quiet)
    raise typer.Exit(exit_code(results))
