"""The command line: each command parses, calls the core, and renders. Nothing else lives here."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from typer._click import exceptions as click  # typer vendors click; its errors are these

from mcpctl import __version__, i18n
from mcpctl.constants import ENV_CONFIG, ENV_DEBUG, ENV_HOME, ExitCode
from mcpctl.errors import MCPCtlError, UnsupportedPlatformError, UsageError
from mcpctl.i18n import _
from mcpctl.paths import Paths, find_config, resolve_home

if TYPE_CHECKING:
    from mcpctl.config.model import Config, ServerConfig

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
    trust: bool = False  # run commands from config and env files that are not safely the user's own

    def paths(self) -> Paths:
        return Paths(resolve_home(self.home))

    def find_config(self) -> Path | None:
        """The config file, refused (exit 2) when someone else could have written it (config/trust.py)."""
        from mcpctl.config.trust import check_config

        path = find_config(self.config)
        if path is not None:
            check_config(path, explicit=bool(self.config), trust=self.trust)
        return path

    def load_config(self, required: bool = True) -> Config:
        from mcpctl.config.load import load
        from mcpctl.config.model import empty_config, no_config_found
        from mcpctl.config.trust import check_env_files

        path = self.find_config()
        if path is None:
            if not required:
                return empty_config()
            raise no_config_found()
        config = load(path)
        check_env_files(config, explicit=bool(self.config), trust=self.trust)
        return config


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
    trust: Annotated[
        bool,
        typer.Option("--trust", help="Use config and env files even if another user owns them or can write them."),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = Globals(config, home, quiet, trust)


def valid_name(name: str) -> str:
    """A server name from the command line, checked as the config checks it: never a path (exit 8)."""
    import re

    from mcpctl.constants import SERVER_NAME_PATTERN
    from mcpctl.errors import UnknownServerError

    if not re.fullmatch(SERVER_NAME_PATTERN, name):
        raise UnknownServerError(
            f"unknown server {name!r}: not a server name (letters, digits, '.', '_', '-'; at most 64)",
            "run `mcpctl list` to see the configured servers",
        )
    return name


def valid_name_or_all(name: str) -> str:
    return name if name == "*" else valid_name(name)


def valid_names(names: list[str] | None) -> list[str] | None:
    for name in names or ():
        valid_name(name)
    return names


Names = Annotated[
    list[str] | None,
    typer.Argument(help="Server names from the config.", show_default=False, callback=valid_names),
]
Name = Annotated[str, typer.Argument(help="Server name.", show_default=False, callback=valid_name)]
All = Annotated[bool, typer.Option("--all", "-a", help="Every configured server.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
Force = Annotated[bool, typer.Option("--force", help="Start even during a backoff or crash-loop cooldown.")]


def positive_seconds(value: float | None) -> float | None:
    """A --timeout or interval: a positive, finite number of seconds (nan, inf and -1 are usage errors)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"expected a positive number of seconds, got {value:g}")
    return value


def require_names(names: list[str] | None, everything: bool) -> None:
    if not names and not everything:
        raise UsageError(_("name one or more servers, or pass --all"), _("see `mcpctl --help`"))


def known_servers(paths: Paths, config: Config, names: list[str] | None, everything: bool) -> list[ServerConfig]:
    """Configured servers plus any the state dir knows (a server removed from the config can still be stopped)."""
    return config.known(paths.known_servers(), names, everything)


def main() -> None:
    """Entry point: one line per error, a documented exit code, a traceback only with MCPCTL_DEBUG=1.

    Messages are in the user's language (mcpctl/i18n.py), except under --json: scripts get English."""
    from mcpctl.cli.help import localize

    as_json = "--json" in sys.argv[1:]
    if as_json:
        i18n.use(i18n.ENGLISH)
    try:
        if sys.platform == "win32":
            raise UnsupportedPlatformError(_("mcpctl runs on Linux and macOS; Windows is not supported yet"))
        tree = typer.main.get_command(app)
        localize(tree)
        code = tree.main(prog_name="mcpctl", standalone_mode=False)
    except MCPCtlError as exc:
        _fail(exc, as_json)
    except click.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")
        sys.exit(ExitCode.USAGE)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "mcpctl"
        _fail(UsageError(exc.format_message(), _("see `{command} --help`").format(command=command)), as_json)
    except click.ClickException as exc:
        _fail(MCPCtlError(exc.format_message()), as_json, exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.stderr.write(_("interrupted") + "\n")
        sys.exit(ExitCode.SIGINT)
    except Exception as exc:  # the last line of defence: no traceback for users
        if os.environ.get(ENV_DEBUG) == "1":
            raise
        hint = _("rerun with {variable}=1 and report it").format(variable=ENV_DEBUG)
        message = _("internal error: {kind}: {error}").format(kind=type(exc).__name__, error=exc)
        _fail(MCPCtlError(message, hint), as_json)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(exc: MCPCtlError, as_json: bool, code: int | None = None) -> NoReturn:
    if os.environ.get(ENV_DEBUG) == "1":
        raise exc
    from mcpctl.render import output as render

    render.error(exc, as_json)
    sys.exit(exc.exit_code if code is None else code)
