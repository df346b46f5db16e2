"""The command line: each command parses, calls the core, and renders. Nothing else lives here."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer
from typer._click import exceptions as click  # typer vendors click; its errors are these

from mcpctl import __version__
from mcpctl.constants import ExitCode
from mcpctl.errors import MCPCtlError, UnsupportedPlatformError, UsageError
from mcpctl.hot import options as opt
from mcpctl.hot.context import Globals, fail, guarded, known_servers, valid_name, valid_name_or_all, valid_names
from mcpctl.hot.lifecycle import require_names
from mcpctl.i18n import _

__all__ = [
    "Globals",
    "app",
    "fail",
    "known_servers",
    "main",
    "require_names",
    "valid_name",
    "valid_name_or_all",
    "valid_names",
]

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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mcpctl {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Option(*opt.CONFIG.flags, help=opt.CONFIG.help)] = None,
    home: Annotated[str | None, typer.Option(*opt.HOME.flags, help=opt.HOME.help)] = None,
    project: Annotated[str | None, typer.Option(*opt.PROJECT.flags, help=opt.PROJECT.help)] = None,
    quiet: Annotated[bool, typer.Option(*opt.QUIET.flags, help=opt.QUIET.help)] = False,
    trust: Annotated[bool, typer.Option(*opt.TRUST.flags, help=opt.TRUST.help)] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = Globals(config, home, quiet, trust, project)


Names = Annotated[
    list[str] | None,
    typer.Argument(
        help="Server names from the config (PROJECT/NAME for another project's).",
        show_default=False,
        callback=valid_names,
    ),
]
Name = Annotated[str, typer.Argument(help="Server name, or PROJECT/NAME.", show_default=False, callback=valid_name)]
All = Annotated[bool, typer.Option(*opt.ALL.flags, help=opt.ALL.help)]
AllProjects = Annotated[bool, typer.Option(*opt.ALL_PROJECTS.flags, help=opt.ALL_PROJECTS.help)]
Json = Annotated[bool, typer.Option(*opt.JSON.flags, help=opt.JSON.help)]
Force = Annotated[bool, typer.Option(*opt.FORCE.flags, help=opt.FORCE.help)]


def positive_seconds(value: float | None) -> float | None:
    """A --timeout or interval: a positive, finite number of seconds (nan, inf and -1 are usage errors)."""
    if value is not None and not opt.positive_seconds(value):
        from mcpctl.cli.help import POSITIVE  # only for this error

        raise typer.BadParameter(POSITIVE.format(value=value))
    return value


def main() -> None:
    """Entry point: one line per error, a documented exit code, a traceback only with MCPCTL_DEBUG=1.

    Messages are in the user's language (mcpctl/i18n.py), except under --json: scripts get English."""
    as_json = "--json" in sys.argv[1:]
    guarded(lambda: _run(as_json), as_json)


def _run(as_json: bool) -> int:
    """The typer app on sys.argv, click's own exceptions turned into ours."""
    from mcpctl.cli.help import localize, usage_error

    try:
        if sys.platform == "win32":
            raise UnsupportedPlatformError(_("mcpctl runs on Linux and macOS; Windows is not supported yet"))
        tree = typer.main.get_command(app)
        localize(tree)
        code = tree.main(prog_name="mcpctl", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")
        return ExitCode.USAGE
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "mcpctl"
        error = UsageError(exc.format_message(), _("see `{command} --help`").format(command=command))
        if command == "mcpctl check" and "--nagios" in sys.argv[1:]:  # a plugin's bad arguments are UNKNOWN
            _unknown(error, as_json)  # the monitor's line in click's English, as every plugin line
        raise UsageError(usage_error(error.message), error.hint) from None
    except MCPCtlError as exc:  # an argument's own check (a name that is no server name) before the command ran
        if "--nagios" in sys.argv[1:] and "check" in sys.argv[1:]:
            _unknown(exc, as_json)
        raise
    except click.ClickException as exc:
        fail(MCPCtlError(exc.format_message()), as_json, exc.exit_code)
    except typer.Abort:
        raise KeyboardInterrupt from None
    return code if isinstance(code, int) else 0


def _unknown(error: MCPCtlError, as_json: bool) -> NoReturn:
    """`check --nagios` that could not check: the monitor's UNKNOWN line and exit 3."""
    from mcpctl.hot import commands

    commands.unknown(error, as_json)
