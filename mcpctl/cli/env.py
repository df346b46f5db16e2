"""`mcpctl env`: check servers' environments, and the validation rules added at run time."""

from __future__ import annotations

from typing import Annotated

import typer

from mcpctl.cli.app import All, Globals, Json, Names, app, valid_name_or_all
from mcpctl.constants import ExitCode
from mcpctl.errors import UsageError
from mcpctl.i18n import _

env_app = typer.Typer(help="Check servers' environments and manage validation rules.", no_args_is_help=True)
rule_app = typer.Typer(help="Add or remove validation rules for environment variables.", no_args_is_help=True)
env_app.add_typer(rule_app, name="rule")
app.add_typer(env_app, name="env")


@env_app.command("check")
def env_check(ctx: typer.Context, names: Names = None, everything: All = False, as_json: Json = False) -> None:
    """Show where each variable comes from and whether it passes its rules (values are never shown)."""
    from mcpctl.control.controller import Controller
    from mcpctl.render import env as render

    g: Globals = ctx.obj
    t = g.target(names, required=True)  # PROJECT/NAME: that project's config, as `start` takes it
    supervisor = Controller(t.paths, t.config)
    servers = t.config.select(t.names or [], everything or not names)
    reports = [(server.name, supervisor.resolve(server)) for server in servers]
    render.env_check(reports, as_json)
    if not all(resolution.ok for _, resolution in reports):
        raise typer.Exit(ExitCode.ENV_MISSING)


@env_app.command("rules")
def env_rules_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List every rule: from the config (required_env, [env_rules]) and those added with `env rule add`."""
    from mcpctl.config import env_rules
    from mcpctl.render import env as render

    g: Globals = ctx.obj
    render.env_rules(env_rules.listing(g.load_config(required=False), env_rules.stored(g.paths())), as_json)


@rule_app.command("add")
def env_rule_add(
    ctx: typer.Context,
    server: Annotated[str, typer.Argument(help='Server name, or "*" for every server.', callback=valid_name_or_all)],
    var: Annotated[str, typer.Argument(help="Variable name.")],
    pattern: Annotated[str | None, typer.Option(help="Regex the whole value must match.")] = None,
    min_length: Annotated[int | None, typer.Option("--min-length", help="Shortest allowed value.", min=0)] = None,
    non_empty: Annotated[bool, typer.Option("--non-empty", help="An empty value is invalid.")] = False,
    optional: Annotated[bool, typer.Option("--optional", help="Check the value only if it is set.")] = False,
    as_json: Json = False,
) -> None:
    """Add (or replace) a rule; it applies from the next start."""
    import re

    from mcpctl.config import env_rules
    from mcpctl.config.environment import EnvRule
    from mcpctl.config.model import unknown_server
    from mcpctl.render import env as render
    from mcpctl.state import state_lock

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    if server != env_rules.EVERY_SERVER and server not in config.servers:
        raise unknown_server(server, config)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise UsageError(_("{var!r} is not an environment variable name").format(var=var))
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(
                _("--pattern {pattern!r} is not a valid regular expression: {error}").format(pattern=pattern, error=exc)
            ) from None
    rule = EnvRule(var, required=not optional, non_empty=non_empty, pattern=pattern, min_length=min_length)
    paths.ensure()
    with state_lock(paths.lock):
        rules = env_rules.add(paths, server, rule)
    render.env_rules(rules, as_json)


@rule_app.command("rm")
def env_rule_rm(
    ctx: typer.Context,
    server: Annotated[str, typer.Argument(help='Server name, or "*".', callback=valid_name_or_all)],
    var: Annotated[str, typer.Argument(help="Variable name.")],
    as_json: Json = False,
) -> None:
    """Remove a rule added with `env rule add` (config rules are changed in the config file)."""
    from mcpctl.config import env_rules
    from mcpctl.render import env as render
    from mcpctl.state import state_lock

    g: Globals = ctx.obj
    paths = g.paths()
    paths.ensure()
    with state_lock(paths.lock):
        removed = env_rules.remove(paths, server, var)
    if not removed:
        raise UsageError(
            _("no rule for {var} on {server!r} was added with `mcpctl env rule add`").format(var=var, server=server),
            _("see `mcpctl env rules`"),
        )
    render.env_rules(env_rules.stored(paths), as_json)
