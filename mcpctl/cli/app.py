"""The command line: each command parses, calls the core, and renders. Nothing else lives here."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click import exceptions as click  # typer vendors click; its errors are these

from mcpctl import __version__, i18n
from mcpctl.constants import ENV_CONFIG, ENV_DEBUG, ENV_HOME, ExitCode
from mcpctl.errors import MCPCtlError, UnsupportedPlatformError, UsageError
from mcpctl.i18n import _
from mcpctl.paths import Paths, chosen_home, default_home, find_config

if TYPE_CHECKING:
    from mcpctl.config.model import Config, ServerConfig
    from mcpctl.control.projects import Target

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
    project: str | None = None  # --project
    _cache: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)

    def paths(self) -> Paths:
        """The current project's files; when its config file is missing or broken, those of the project
        its path names (so `doctor`, `config import` and `client setup` still find the state dir)."""
        try:
            return self.target().paths
        except MCPCtlError:
            from mcpctl import legacy
            from mcpctl.config.load import project_of
            from mcpctl.config.model import DEFAULT_PROJECT

            written = self.config or os.environ.get(ENV_CONFIG)
            path = Path(written).expanduser() if written else _quietly(find_config)
            project = self.project or (project_of(path) if path else DEFAULT_PROJECT)
            return legacy.paths_for(chosen_home(self.home) or default_home(), project)

    def find_config(self) -> Path | None:
        """The config file, refused (exit 2) when someone else could have written it (config/trust.py)."""
        from mcpctl.config.trust import check_config

        path = find_config(self.config)
        if path is not None:
            check_config(path, explicit=bool(self.config), trust=self.trust)
        return path

    def load_config(self, required: bool = True) -> Config:
        """The config of the project the command acts on (the found file's, unless --project names another)."""
        return self.target(required=required).config

    def target(self, names: list[str] | None = None, required: bool = False) -> Target:
        """The project `names` (PROJECT/NAME), --project or the found config choose: its paths, its config,
        and the names without their project. The first use of the state dir's old layout says so, once."""
        from mcpctl.config.model import no_config_found
        from mcpctl.control import projects

        project, bare = projects.split(names or [], self.project)
        if (project, required) not in self._cache:
            found = self._found(tolerant=project is not None)
            home = chosen_home(self.home)
            chosen = projects.target(found, home, project, bare, required)
            if chosen.config.path is not None and (found is None or chosen.config is not found):
                self.trusted(chosen.config)  # the config file a record was started from: judged as -f's
            if chosen.note and not self.quiet:
                sys.stderr.write(chosen.note + "\n")
            self._cache[(project, required)] = chosen
        cached: Target = self._cache[(project, required)]
        if required and cached.config.path is None:
            raise no_config_found()
        return replace(cached, names=bare)

    def trusted(self, config: Config) -> None:
        """A config file (and its env files) that -f did not name, refused unless safely the user's own."""
        from mcpctl.config.trust import check_config

        assert config.path is not None
        check_config(config.path, explicit=False, trust=self.trust)
        self.check_env_files(config)

    def _found(self, tolerant: bool) -> Config | None:
        """The config file -f, $MCPCTL_CONFIG or the search finds; a broken one is passed over when
        the command names another project's servers (it is only asked which project it is)."""
        from mcpctl.config.load import load

        path = self.find_config()
        try:
            config = load(path) if path else None
        except MCPCtlError:
            if tolerant and not self.config:
                return None
            raise
        if config is not None:
            self.check_env_files(config)
        return config

    def check_env_files(self, config: Config) -> None:
        """The config's env files, refused as its config file is (config/trust.py)."""
        from mcpctl.config.trust import check_env_files

        check_env_files(config, explicit=bool(self.config), trust=self.trust)


def _quietly(find: Callable[[], Path | None]) -> Path | None:
    try:
        return find()
    except MCPCtlError:
        return None


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
    home: Annotated[
        str | None, typer.Option("--home", help=f"State directory (else ${ENV_HOME}, else the config's home).")
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", help="Act on this project's servers (else the config file's).")
    ] = None,
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
    ctx.obj = Globals(config, home, quiet, trust, project)


def valid_name(name: str) -> str:
    """A server name from the command line (NAME or PROJECT/NAME), checked as the config checks it: never
    a path (exit 8)."""
    import re

    from mcpctl.constants import SERVER_NAME_PATTERN
    from mcpctl.errors import UnknownServerError

    # Each part is checked as a name (no '.', '..' or '/' there); a PROJECT that is a name but not a
    # project name is control.projects.split's usage error (exit 2).
    project, slash, bare = name.rpartition("/")
    if not re.fullmatch(SERVER_NAME_PATTERN, bare) or (slash and not re.fullmatch(SERVER_NAME_PATTERN, project)):
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
    typer.Argument(
        help="Server names from the config (PROJECT/NAME for another project's).",
        show_default=False,
        callback=valid_names,
    ),
]
Name = Annotated[str, typer.Argument(help="Server name, or PROJECT/NAME.", show_default=False, callback=valid_name)]
All = Annotated[bool, typer.Option("--all", "-a", help="Every configured server.")]
AllProjects = Annotated[bool, typer.Option("--all-projects", "-A", help="Every project's servers in the state dir.")]
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
