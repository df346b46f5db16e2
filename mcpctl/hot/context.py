"""What every command is given, without typer: the global options (`Globals`), the servers its names
mean, the check of a name, and how an error ends the command. The typer app (cli/app.py) and the hot
path (hot/run.py) share them."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import field, replace
from functools import partial
from pathlib import Path

from mcpctl import i18n
from mcpctl.constants import ENV_CONFIG, ENV_DEBUG, SERVER_NAME_PATTERN, ExitCode
from mcpctl.errors import MCPCtlError, StateDirError, UnknownServerError, UsageError
from mcpctl.hints import TYPE_CHECKING, Any, NoReturn
from mcpctl.i18n import _
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths, chosen_home, default_home, find_config

if TYPE_CHECKING:
    from mcpctl.config.model import Config, ServerConfig
    from mcpctl.control.projects import Target


@dataclass(frozen=True)
class Globals(Record):
    """The global options (-f, --home, -q, --trust, --project) and what they find, found once."""

    config: str | None
    home: str | None
    quiet: bool = False
    trust: bool = False  # run commands from config and env files that are not safely the user's own
    project: str | None = None  # --project
    _cache: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)

    def paths(self) -> Paths:
        """The current project's files; when its config file is missing or broken, those of the project
        its path names (so `doctor`, `config import` and `client setup` still find the state dir). Either
        way the state dir is judged before it is read: one shared or someone else's is refused (exit 1)."""
        try:
            return self.target().paths
        except (StateDirError, UsageError):
            raise  # the state dir is refused, or the options contradict each other: never another one instead
        except MCPCtlError:
            written = self.config or os.environ.get(ENV_CONFIG)
            return self.paths_of(Path(written).expanduser() if written else _quietly(find_config))

    def paths_of(self, path: Path | None) -> Paths:
        """The files of the project whose config file `path` is, or will be once written (--project's, if
        given), in the state dir chosen; the state dir judged as `paths` judges it."""
        from mcpctl import legacy
        from mcpctl.config.load import project_of
        from mcpctl.config.model import DEFAULT_PROJECT
        from mcpctl.control.projects import judged_home

        project = self.project or (project_of(path) if path else DEFAULT_PROJECT)
        home = judged_home(chosen_home(self.home) or default_home(), self._judged())
        return legacy.paths_for(home, project)

    def _judged(self) -> set[Path]:
        """The state dirs this command judged already (control/projects.judged_home): each once."""
        judged: set[Path] = self._cache.setdefault("judged", set())
        return judged

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

    def target(self, names: list[str] | None = None, required: bool = False, lenient: bool = False) -> Target:
        """The project `names` (PROJECT/NAME), --project or the found config choose: its paths, its config,
        and the names without their project. The first use of the state dir's old layout says so, once.
        `lenient` (stop, status: what runs is the state dir's to say): a config file that does not load is
        warned of, and so is one the trust rules refuse (it is not read), and the project its records name
        is taken, with no server configured."""
        from mcpctl.config.model import no_config_found
        from mcpctl.control import projects

        project, bare = projects.split(names or [], self.project)
        key = (project, required, lenient)
        if key not in self._cache:
            find = partial(self._found, tolerant=project is not None)
            home, judged, explicit = chosen_home(self.home), self._judged(), bool(self.config)
            chosen = projects.target(find, home, project, bare, required, judged, lenient, self.trust, explicit)
            if chosen.note and not self.quiet:
                sys.stderr.write(chosen.note + "\n")
            self._cache[key] = chosen
        cached: Target = self._cache[key]
        if required and cached.config.path is None:
            raise no_config_found()
        return replace(cached, names=bare)

    def _found(self, tolerant: bool) -> Config | None:
        """The config file -f, $MCPCTL_CONFIG or the search finds; a broken one is passed over when
        the command names another project's servers (it is only asked which project it is), and so is
        one the trust rules refuse, unread."""
        from mcpctl.config.load import load

        try:
            path = self.find_config()
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


def valid_name(name: str) -> str:
    """A server name from the command line (NAME or PROJECT/NAME), checked as the config checks it: never
    a path (exit 8)."""
    # Each part is checked as a name (no '.', '..' or '/' there); a PROJECT that is a name but not a
    # project name is control.projects.split's usage error (exit 2).
    project, slash, bare = name.rpartition("/")
    if not re.fullmatch(SERVER_NAME_PATTERN, bare) or (slash and not re.fullmatch(SERVER_NAME_PATTERN, project)):
        wrong = _("unknown server {name!r}: not a server name (letters, digits, '.', '_', '-'; at most 64)")
        raise UnknownServerError(wrong.format(name=name), _("run `mcpctl list` to see the configured servers"))
    return name


def valid_name_or_all(name: str) -> str:
    return name if name == "*" else valid_name(name)


def valid_names(names: list[str] | None) -> list[str] | None:
    for name in names or ():
        valid_name(name)
    return names


def known_servers(paths: Paths, config: Config, names: list[str] | None, everything: bool) -> list[ServerConfig]:
    """Configured servers plus any the state dir knows (a server removed from the config can still be stopped)."""
    return config.known(paths.known_servers(), names, everything)


def is_name(name: str) -> bool:
    """Whether valid_name would take `name`."""
    try:
        valid_name(name)
    except UnknownServerError:
        return False
    return True


def guarded(body: Callable[[], int], as_json: bool) -> NoReturn:
    """Run a command and exit as every command does: one line per error, a documented exit code, a
    traceback only with MCPCTL_DEBUG=1; messages in English under --json (scripts read them)."""
    if as_json:
        i18n.use(i18n.ENGLISH)
    try:
        code = body()
    except KeyboardInterrupt:
        sys.stderr.write(_("interrupted") + "\n")
        sys.exit(ExitCode.SIGINT)
    except BrokenPipeError:  # `mcpctl status | head -1`: quiet, with the exit code of a write error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - flushed at exit instead of the closed pipe
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        fail(as_error(exc), as_json)
    leave(code)


def as_error(exc: Exception) -> MCPCtlError:
    """What a command's failure says: an MCPCtlError as it is, anything else as `internal` makes it (raised
    as it is under MCPCTL_DEBUG=1, for its traceback)."""
    if isinstance(exc, MCPCtlError):
        return exc
    if os.environ.get(ENV_DEBUG) == "1":
        raise exc
    return internal(exc)


def internal(exc: Exception) -> MCPCtlError:
    """A bug, as the one line users see of it; a file where the state dir has a folder is no bug."""
    if isinstance(exc, NotADirectoryError) and exc.filename:
        from mcpctl.privdir import blocked

        return blocked(Path(os.fsdecode(exc.filename)))
    hint = _("rerun with {variable}=1 and report it").format(variable=ENV_DEBUG)
    return MCPCtlError(_("internal error: {kind}: {error}").format(kind=type(exc).__name__, error=exc), hint)


def leave(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, which frees (~20 ms here) what the kernel frees at once.
    Everything that must outlive the command is written and closed by now, save our own output."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `mcpctl status | head -1`: as in `guarded`
        code = 1
    os._exit(code)


def fail(exc: MCPCtlError, as_json: bool, code: int | None = None) -> NoReturn:
    """Print `exc` as one line (or as --json) and exit with its code; raise it under MCPCTL_DEBUG=1."""
    if os.environ.get(ENV_DEBUG) == "1":
        raise exc
    from mcpctl.render import output as render

    render.error(exc, as_json)
    sys.exit(exc.exit_code if code is None else code)
