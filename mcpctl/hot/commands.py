"""The bodies of `status` and `check`, shared by the typer commands and the hot path; each returns its
exit code."""

from __future__ import annotations

from mcpctl.constants import ExitCode
from mcpctl.errors import UsageError
from mcpctl.hot.context import Globals, known_servers
from mcpctl.i18n import _


def status(g: Globals, names: list[str] | None, all_projects: bool, as_json: bool) -> int:
    if all_projects and names:
        raise UsageError(_("name servers or pass --all-projects, not both"), _("see `mcpctl status --help`"))
    t = g.target(names)  # first: a missing or broken config is said before the rest is imported
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
    t = g.target(names)  # first, as in `status`
    from mcpctl.control.controller import Controller
    from mcpctl.health import verdict
    from mcpctl.render import servers as render

    servers = known_servers(t.paths, t.config, t.names, everything or not names)
    if not names and t.config.path is not None:
        servers = list(t.config.servers.values())  # a server `apply` removed from the config is not checked
    observations = Controller(t.paths, t.config).status([s.name for s in servers], repair=False)
    verdicts = [verdict(o.name, o.state, o.record.health, o.record.alerts) for o in observations]
    statuses = {v.status for v in verdicts}
    code = ExitCode.NOT_RUNNING if "not_running" in statuses else ExitCode.OK
    unwell = {"unhealthy", "unresponsive"} & statuses
    code = ExitCode.UNHEALTHY if code == ExitCode.OK and unwell else code
    if as_json or nagios or not g.quiet:
        render.check(verdicts, as_json, nagios)
    if nagios:
        return 0 if code == ExitCode.OK else 2  # the plugin convention: 2 is CRITICAL
    return code
