"""The bodies of start, stop and restart, shared by the typer commands, `resume` and the hot path; each
returns its exit code."""

from __future__ import annotations

import sys
from pathlib import Path

from mcpctl.constants import ExitCode
from mcpctl.errors import UsageError
from mcpctl.hints import TYPE_CHECKING
from mcpctl.hot.context import Globals, known_servers
from mcpctl.i18n import _
from mcpctl.states import StartOutcome

if TYPE_CHECKING:
    from mcpctl.config.model import Config, ServerConfig
    from mcpctl.control.early import Early
    from mcpctl.control.results import StartResult
    from mcpctl.paths import Paths


def require_names(names: list[str] | None, everything: bool) -> None:
    if not names and not everything:
        raise UsageError(_("name one or more servers, or pass --all"), _("see `mcpctl --help`"))


def stop(g: Globals, names: list[str] | None, everything: bool, timeout: float | None, as_json: bool) -> int:
    require_names(names, everything)
    t = g.target(names, lenient=True)  # first: a broken config is said before the rest is imported
    from mcpctl.control.controller import Controller, with_timeouts
    from mcpctl.render import servers as render

    servers = with_timeouts(known_servers(t.paths, t.config, t.names, everything), stop=timeout)
    if everything:
        _stop_gateway(g, t.paths, as_json)
    results = Controller(t.paths, t.config).stop(servers)
    if as_json or not g.quiet:
        render.stop(results, as_json)
    return ExitCode.OK


def start(
    g: Globals,
    names: list[str] | None,
    everything: bool,
    timeout: float | None,
    as_json: bool,
    *,
    wait: bool = True,
    restart: bool = False,
    force: bool = False,
    early: Early | None = None,
) -> int:
    """`early`: a shim the hot path started ahead for the one server named (`mcpctl.control.early`)."""
    require_names(names, everything)
    t = g.target(names, required=True)
    servers = t.config.select(t.names, everything)  # --timeout bounds our wait, not the shims' startup_timeout
    gateway = everything and not restart  # `start --all` starts the gateway too, when one is configured
    if everything and not servers and not (gateway and t.config.gateway) and not g.quiet:
        # Not an error (the config is valid, and the command did all it was asked), but never silent either.
        nothing = (
            _("nothing to restart: {path} has no enabled servers")
            if restart
            else _("nothing to start: {path} has no enabled servers")
        )
        sys.stderr.write(_("note: {text}").format(text=nothing.format(path=t.config.path)) + "\n")
    return start_and_render(
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
        early=early,
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
    early: Early | None = None,
) -> int:
    """Start (or restart) `servers`, show the results, and return the exit code the outcomes call for;
    `timeout` bounds this command's wait only; `gateway`: start the configured gateway too."""
    from mcpctl.control.controller import Controller
    from mcpctl.render import servers as render
    from mcpctl.render.progress import Waiting

    controller = Controller(paths, config, early=early)
    label = (_("restarting {names}") if restart else _("starting {names}")).format(
        names=", ".join(s.name for s in servers)
    )
    with Waiting(label, enabled=wait and not g.quiet):
        begin = controller.restart if restart else controller.start
        results = begin(servers, wait=wait, force=force, timeout=timeout)
    render.start(results, as_json, quiet=g.quiet)
    if gateway and config.gateway is not None and config.path is not None:
        _start_gateway(g, paths, config.path, as_json)
    return exit_code(results)


def exit_code(results: list[StartResult]) -> int:
    """The exit code the start outcomes call for."""
    outcomes = {r.outcome for r in results}
    if StartOutcome.FAILED in outcomes:
        return ExitCode.START_FAILED
    if StartOutcome.ENV_INVALID in outcomes:
        return ExitCode.ENV_MISSING
    if StartOutcome.SKIPPED in outcomes:
        return ExitCode.SKIPPED
    return ExitCode.OK


def _start_gateway(g: Globals, paths: Paths, path: Path, as_json: bool) -> None:
    """`start --all` starts the configured gateway too (its line goes to stderr: stdout is the servers')."""
    from mcpctl.gateway import lifecycle

    result = lifecycle.start(paths, path)
    if not g.quiet and not as_json:
        sys.stderr.write(f"gateway {result['outcome']}: {result.get('url')}\n")


def _stop_gateway(g: Globals, paths: Paths, as_json: bool) -> None:
    """`stop --all` stops the project's gateway too, whether or not the config still has its table: it is
    a process of this state dir. First: it is a client of the shims, and starts a server on a request."""
    from mcpctl.gateway import record

    if record.holder(paths) is None:
        return
    from mcpctl.gateway import lifecycle

    result = lifecycle.stop(paths)
    if not g.quiet and not as_json:
        sys.stderr.write(f"gateway {result['outcome']}: {result.get('url')}\n")
