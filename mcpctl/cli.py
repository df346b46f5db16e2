"""The command line: each command parses, calls the core, and renders. Nothing else lives here."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from typer._click import exceptions as click  # typer vendors click; its errors are these

from mcpctl import __version__
from mcpctl.constants import ENV_CONFIG, ENV_DEBUG, ENV_HOME, ExitCode
from mcpctl.errors import MCPCtlError, UnsupportedPlatformError, UsageError
from mcpctl.paths import Paths, find_config, resolve_home

if TYPE_CHECKING:
    from mcpctl.config import Config, ServerConfig

# The core (psutil) and the renderer (rich) are imported inside the commands that use them,
# so `mcpctl --help` and usage errors never pay for them.

app = typer.Typer(
    name="mcpctl",
    help="Start, stop and watch MCP servers: one warm, supervised instance per server.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain click help: typer's rich help costs ~70 ms of imports
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass(frozen=True)
class Globals:
    config: str | None
    home: str | None
    quiet: bool = False

    def paths(self) -> Paths:
        return Paths(resolve_home(self.home))

    def load_config(self, required: bool = True) -> Config:
        from mcpctl.config import empty_config, load, no_config_found

        path = find_config(self.config)
        if path is None:
            if not required:
                return empty_config()
            raise no_config_found()
        return load(path)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mcpctl {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    config: Annotated[
        str | None, typer.Option("-f", "--config", help=f"Config file (else ${ENV_CONFIG}, else ./mcpctl.toml upward).")
    ] = None,
    home: Annotated[str | None, typer.Option("--home", help=f"State directory (else ${ENV_HOME}).")] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Print only errors (and --json output); the exit code tells the rest.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = Globals(config, home, quiet)


Names = Annotated[list[str] | None, typer.Argument(help="Server names from the config.", show_default=False)]
All = Annotated[bool, typer.Option("--all", "-a", help="Every configured server.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Force = Annotated[bool, typer.Option("--force", help="Start even during a backoff or crash-loop cooldown.")]


def _require_names(names: list[str] | None, everything: bool) -> None:
    if not names and not everything:
        raise UsageError("name one or more servers, or pass --all", "see `mcpctl --help`")


def _known(paths: Paths, config: Config, names: list[str] | None, everything: bool) -> list[ServerConfig]:
    """Configured servers plus any the state dir knows (a server removed from the config can still be stopped)."""
    from mcpctl.config import ServerConfig, unknown_server

    extra = {n: ServerConfig(name=n) for n in paths.known_servers() if n not in config.servers}
    if everything or not names:
        return [*config.servers.values(), *extra.values()]
    known = {**extra, **config.servers}
    missing = [n for n in names if n not in known]
    if missing:
        raise unknown_server(missing[0], config)
    return [known[n] for n in dict.fromkeys(names)]


@app.command()
def start(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for ready (default: startup_timeout).")] = None,
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
    timeout: Annotated[
        float | None, typer.Option(help="Seconds between SIGTERM and SIGKILL (default: stop_timeout).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Stop servers gracefully, with their whole process tree; returns when nothing is left."""
    from mcpctl import render
    from mcpctl.supervisor import Supervisor, with_timeouts

    g: Globals = ctx.obj
    paths = g.paths()
    _require_names(names, everything)
    config = g.load_config(required=False)
    servers = with_timeouts(_known(paths, config, names, everything), stop=timeout)
    results = Supervisor(paths, config).stop(servers)
    if as_json or not g.quiet:
        render.stop(results, as_json)


@app.command()
def restart(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for ready (default: startup_timeout).")] = None,
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
    from mcpctl import render
    from mcpctl.progress import Waiting
    from mcpctl.supervisor import Supervisor, with_timeouts

    _require_names(names, everything)
    config = g.load_config()
    servers = with_timeouts(config.select(names or [], everything), startup=timeout)
    supervisor = Supervisor(g.paths(), config)
    label = ("restarting " if restart else "starting ") + ", ".join(s.name for s in servers)
    with Waiting(label, enabled=wait and not g.quiet):
        results = (
            supervisor.restart(servers, force=force) if restart else supervisor.start(servers, wait=wait, force=force)
        )
    render.start(results, as_json, quiet=g.quiet)
    outcomes = {r.outcome for r in results}
    if "failed" in outcomes:
        raise typer.Exit(ExitCode.START_FAILED)
    if "env_invalid" in outcomes:
        raise typer.Exit(ExitCode.ENV_MISSING)
    if "skipped" in outcomes:
        raise typer.Exit(ExitCode.SKIPPED)


@app.command()
def status(ctx: typer.Context, names: Names = None, as_json: Json = False) -> None:
    """Show each server's state, reconciled with the real processes. Exit 3 if a named one is not running."""
    from mcpctl import render
    from mcpctl.supervisor import Supervisor

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    servers = _known(paths, config, names, everything=False)
    observations = Supervisor(paths, config).status([s.name for s in servers])
    if as_json or not g.quiet:
        render.status(observations, as_json)
    if names and not all(o.running for o in observations):
        raise typer.Exit(ExitCode.NOT_RUNNING)


@app.command()
def check(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    nagios: Annotated[
        bool, typer.Option("--nagios", help="Monitoring-plugin output and exit codes (0/1/2/3).")
    ] = False,
    as_json: Json = False,
) -> None:
    """For cron and CI: exit 0 if every server is ready and healthy, 6 if one is unhealthy, 3 if one is not running.

    Starts nothing and takes no lock.
    """
    from mcpctl import render
    from mcpctl.health import verdict
    from mcpctl.supervisor import Supervisor

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    servers = _known(paths, config, names, everything or not names)
    observations = Supervisor(paths, config).status([s.name for s in servers], repair=False)
    verdicts = [verdict(o.name, o.state, o.record.health, o.record.alerts) for o in observations]
    statuses = {v.status for v in verdicts}
    code = ExitCode.NOT_RUNNING if "not_running" in statuses else ExitCode.OK
    code = ExitCode.UNHEALTHY if code == ExitCode.OK and "unhealthy" in statuses else code
    if as_json or nagios or not g.quiet:
        render.check(verdicts, as_json, nagios)
    if nagios:
        raise typer.Exit(0 if code == ExitCode.OK else 2)  # the plugin convention: 2 is CRITICAL
    raise typer.Exit(code)


@app.command("alerts")
def alerts_list(ctx: typer.Context, as_json: Json = False) -> None:
    """Alerts firing now, on every server (fired and resolved ones are events in events.jsonl)."""
    from mcpctl import render
    from mcpctl.supervisor import Supervisor

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    names = [s.name for s in _known(paths, config, None, everything=True)]
    observations = Supervisor(paths, config).status(names, repair=False)
    firing = [
        {"server": o.name, **a} for o in observations if o.state in ("ready", "unhealthy") for a in o.record.alerts
    ]
    render.alerts(firing, as_json)


@app.command()
def metrics(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Server name.")],
    since: Annotated[str, typer.Option(help="How far back: 30s, 10m, 2h, 1d.")] = "10m",
    as_json: Json = False,
) -> None:
    """Resource samples of the server's whole process tree: CPU, memory, fds, threads, ping latency."""
    import time

    from mcpctl import metrics as store
    from mcpctl import render

    g: Globals = ctx.obj
    paths = g.paths()
    _known(paths, g.load_config(required=False), [name], everything=False)
    try:
        window = store.parse_duration(since)
    except ValueError as exc:
        raise UsageError(str(exc), "for example --since 10m") from None
    samples = store.read(paths.server_dir(name) / "metrics.jsonl", since=time.time() - window)
    render.metrics(name, samples, as_json)


@app.command()
def top(ctx: typer.Context, interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0) -> None:
    """A live table of every server: state, CPU, memory, ping, restarts. q or Ctrl-C quits.

    When stdout is not a terminal, prints one snapshot.
    """
    from mcpctl import render
    from mcpctl.supervisor import Supervisor

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    supervisor = Supervisor(paths, config)
    names = [s.name for s in _known(paths, config, None, everything=True)]
    render.top(lambda: supervisor.status(names, repair=False), interval)


@app.command("list")
def list_servers(
    ctx: typer.Context,
    names_only: Annotated[
        bool, typer.Option("--names", help="Only the names, one per line (for scripts and shell completion).")
    ] = False,
    as_json: Json = False,
) -> None:
    """List the configured servers (env values are never shown, only their names)."""
    from mcpctl import render

    g: Globals = ctx.obj
    if names_only:
        try:
            config = g.load_config(required=False)
        except MCPCtlError:
            return  # completion asks this on every TAB: a broken config completes nothing, quietly
        sys.stdout.write("".join(f"{name}\n" for name in config.servers))
        return
    render.server_list(g.load_config(), as_json)


env_app = typer.Typer(help="Check servers' environments and manage validation rules.", no_args_is_help=True)
rule_app = typer.Typer(help="Add or remove validation rules for environment variables.", no_args_is_help=True)
env_app.add_typer(rule_app, name="rule")
app.add_typer(env_app, name="env")


@env_app.command("check")
def env_check(ctx: typer.Context, names: Names = None, everything: All = False, as_json: Json = False) -> None:
    """Show where each variable comes from and whether it passes its rules (values are never shown)."""
    from mcpctl import render
    from mcpctl.supervisor import Supervisor

    g: Globals = ctx.obj
    config = g.load_config()
    supervisor = Supervisor(g.paths(), config)
    servers = config.select(names or [], everything or not names)
    reports = [(server.name, supervisor.resolve(server)) for server in servers]
    render.env_check(reports, as_json)
    if not all(resolution.ok for _, resolution in reports):
        raise typer.Exit(ExitCode.ENV_MISSING)


@env_app.command("rules")
def env_rules_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List every rule: from the config (required_env, [env_rules]) and those added with `env rule add`."""
    from mcpctl import env_rules, render

    g: Globals = ctx.obj
    render.env_rules(env_rules.listing(g.load_config(required=False), env_rules.stored(g.paths())), as_json)


@rule_app.command("add")
def env_rule_add(
    ctx: typer.Context,
    server: Annotated[str, typer.Argument(help='Server name, or "*" for every server.')],
    var: Annotated[str, typer.Argument(help="Variable name.")],
    pattern: Annotated[str | None, typer.Option(help="Regex the whole value must match.")] = None,
    min_length: Annotated[int | None, typer.Option("--min-length", help="Shortest allowed value.")] = None,
    non_empty: Annotated[bool, typer.Option("--non-empty", help="An empty value is invalid.")] = False,
    optional: Annotated[bool, typer.Option("--optional", help="Check the value only if it is set.")] = False,
    as_json: Json = False,
) -> None:
    """Add (or replace) a rule; it applies from the next start."""
    import re

    from mcpctl import env_rules, render
    from mcpctl.config import unknown_server
    from mcpctl.environment import EnvRule
    from mcpctl.state import state_lock

    g: Globals = ctx.obj
    paths = g.paths()
    config = g.load_config(required=False)
    if server != env_rules.EVERY_SERVER and server not in config.servers:
        raise unknown_server(server, config)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise UsageError(f"{var!r} is not an environment variable name")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"--pattern {pattern!r} is not a valid regular expression: {exc}") from None
    rule = EnvRule(var, required=not optional, non_empty=non_empty, pattern=pattern, min_length=min_length)
    paths.ensure()
    with state_lock(paths.lock):
        rules = env_rules.add(paths, server, rule)
    render.env_rules(rules, as_json)


@rule_app.command("rm")
def env_rule_rm(
    ctx: typer.Context,
    server: Annotated[str, typer.Argument(help='Server name, or "*".')],
    var: Annotated[str, typer.Argument(help="Variable name.")],
    as_json: Json = False,
) -> None:
    """Remove a rule added with `env rule add` (config rules are changed in the config file)."""
    from mcpctl import env_rules, render
    from mcpctl.state import state_lock

    g: Globals = ctx.obj
    paths = g.paths()
    paths.ensure()
    with state_lock(paths.lock):
        removed = env_rules.remove(paths, server, var)
    if not removed:
        raise UsageError(
            f"no rule for {var} on {server!r} was added with `mcpctl env rule add`", "see `mcpctl env rules`"
        )
    render.env_rules(env_rules.stored(paths), as_json)


from mcpctl.cli_config import apply, config_app  # noqa: E402 - the config commands live in their own module

app.command()(apply)
app.add_typer(config_app, name="config")

# Commands that live in modules of their own; importing them registers them on `app`.
from mcpctl import cli_doctor, cli_init, cli_logs, cli_session  # noqa: E402, F401


def main() -> None:
    """Entry point: one line per error, a documented exit code, a traceback only with MCPCTL_DEBUG=1."""
    as_json = "--json" in sys.argv[1:]
    try:
        if sys.platform == "win32":
            raise UnsupportedPlatformError("mcpctl runs on Linux and macOS; Windows is not supported yet")
        code = app(prog_name="mcpctl", standalone_mode=False)
    except MCPCtlError as exc:
        _fail(exc, as_json)
    except click.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")
        sys.exit(ExitCode.USAGE)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "mcpctl"
        _fail(UsageError(exc.format_message(), f"see `{command} --help`"), as_json)
    except click.ClickException as exc:
        _fail(MCPCtlError(exc.format_message()), as_json, exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write("interrupted\n")
        sys.exit(ExitCode.SIGINT)
    except Exception as exc:  # the last line of defence: no traceback for users
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        hint = f"rerun with {ENV_DEBUG}=1 and report it"
        _fail(MCPCtlError(f"internal error: {type(exc).__name__}: {exc}", hint), as_json)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(exc: MCPCtlError, as_json: bool, code: int | None = None) -> NoReturn:
    if os.environ.get(ENV_DEBUG) == "1":
        raise exc
    from mcpctl import render

    render.error(exc, as_json)
    sys.exit(exc.exit_code if code is None else code)
