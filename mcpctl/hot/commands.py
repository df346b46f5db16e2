"""The bodies of `status` and `check`, shared by the typer commands and the hot path; each returns its
exit code."""

from __future__ import annotations

from mcpctl.constants import ExitCode, NagiosCode
from mcpctl.errors import ConfigError, MCPCtlError, UsageError
from mcpctl.hints import TYPE_CHECKING, NoReturn
from mcpctl.hot.context import Globals, as_error, fail, known_servers
from mcpctl.i18n import _

if TYPE_CHECKING:
    from mcpctl.health import Verdict


def status(g: Globals, names: list[str] | None, all_projects: bool, as_json: bool) -> int:
    if all_projects and names:
        raise UsageError(_("name servers or pass --all-projects, not both"), _("see `mcpctl status --help`"))
    t = g.target(names, lenient=True)  # first, as in `stop`
    from mcpctl.control import projects
    from mcpctl.control.controller import Controller
    from mcpctl.render import servers as render

    if all_projects:
        observations = projects.observe_all(t)
    else:
        servers = known_servers(t.paths, t.config, t.names, everything=False)
        observations = projects.marked(Controller(t.paths, t.config).status([s.name for s in servers]))
    if as_json or not g.quiet:
        render.status(observations, as_json)
    if names and not all(o.running for o in observations):
        return ExitCode.NOT_RUNNING
    return ExitCode.OK


def check(g: Globals, names: list[str] | None, everything: bool, nagios: bool, as_json: bool) -> int:
    """ExitCode's 0, 6 or 3; with `nagios`, NagiosCode's 0-3 (a check that could not be made is 3)."""
    if nagios:
        return _nagios(g, names, everything, as_json)
    verdicts = _verdicts(g, names, everything)
    from mcpctl.render import servers as render

    if as_json or not g.quiet:
        render.check(verdicts, as_json, nagios=False)
    statuses = {v.status for v in verdicts}
    if "not_running" in statuses:
        return ExitCode.NOT_RUNNING
    return ExitCode.UNHEALTHY if {"unhealthy", "unresponsive"} & statuses else ExitCode.OK


def _nagios(g: Globals, names: list[str] | None, everything: bool, as_json: bool) -> int:
    try:
        verdicts = _verdicts(g, names, everything)
    except Exception as exc:  # noqa: BLE001 - whatever stopped the check is UNKNOWN, said as every error is
        unknown(as_error(exc), as_json)
    from mcpctl.health import nagios_level
    from mcpctl.render import servers as render

    render.check(verdicts, as_json, nagios=True)  # under -q too: the line is what the monitor shows
    return nagios_level(verdicts)


def unknown(exc: MCPCtlError, as_json: bool) -> NoReturn:
    """`check --nagios` could not check (no config, an invalid one, an unknown name, a bad option): UNKNOWN."""
    if not as_json:
        from mcpctl.render import servers as render

        render.nagios_unknown(exc)
    fail(exc, as_json, NagiosCode.UNKNOWN)


def _verdicts(g: Globals, names: list[str] | None, everything: bool) -> list[Verdict]:
    """Without names the config says what to check: none found, or one with no servers, is an error (exit 2),
    never a pass (a cron check run in the wrong directory must not pass silently)."""
    t = g.target(names, required=not names)  # first, as in `status`
    from mcpctl.control.controller import Controller
    from mcpctl.health import verdict

    if names:
        servers = known_servers(t.paths, t.config, t.names, everything)
    else:  # the config's: a server `apply` removed from it is not checked
        servers = list(t.config.servers.values())
        if not servers:
            raise ConfigError(
                _("{path} has no servers to check").format(path=t.config.path),
                _("add a [servers.NAME] table to it, or pass -f with the config to check"),
            )
    observations = Controller(t.paths, t.config).status([s.name for s in servers], repair=False)
    return [verdict(o.name, o.state, o.record.health, o.record.alerts) for o in observations]
