"""The projects of a state dir: which there are, which one a command acts on, the config file each was
started from (kept in its records), and records whose config file is gone (orphaned)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from mcpctl import legacy
from mcpctl.config.model import (
    DEFAULT_PROJECT,
    PROJECT_PATTERN,
    Config,
    InvalidConfig,
    UntrustedFile,
    empty_config,
    no_config_found,
    project_name,
)
from mcpctl.errors import ConfigError, UsageError
from mcpctl.hints import TYPE_CHECKING
from mcpctl.i18n import N_, _
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths, default_home
from mcpctl.privdir import judge_home
from mcpctl.state import CorruptState, StateRecord, read_record

if TYPE_CHECKING:
    from mcpctl.control.observe import Observation

# The usage errors of names with a project (English: --json carries them); KNOWN: shown translated.
ONE_PROJECT = N_("servers of one project at a time, not {shown}")
NOT_A_PROJECT = N_("{project!r} is not a project name (a-z, 0-9, '_', '-')")
DISAGREE = N_("-f {path} is the config file of project {found!r}, not of project {project!r}")
DISAGREE_HINT = N_(
    "drop -f to act on {project!r} with its own config file, or drop --project (and {prefix}) to act on {found!r}"
)
KNOWN = (ONE_PROJECT, NOT_A_PROJECT, DISAGREE, DISAGREE_HINT)


@dataclass(frozen=True)
class Target(Record):
    """What a command acts on: one project's paths and config, and the server names without a project."""

    paths: Paths
    config: Config
    names: list[str]
    note: str | None = None  # the one line said on stderr: the state dir's old layout adopted now, a broken config


def split(names: list[str], chosen: str | None) -> tuple[str | None, list[str]]:
    """The project `PROJECT/NAME` names (or --project chose), and the bare names; one project at a time."""
    prefixes = {name.split("/", 1)[0] for name in names if "/" in name}
    if chosen is not None:
        prefixes.add(chosen)
    if len(prefixes) > 1:
        shown = ", ".join(sorted(prefixes))
        raise UsageError(ONE_PROJECT.format(shown=shown), N_("run the command once per project"))
    project = prefixes.pop() if prefixes else None
    if project is not None and not PROJECT_PATTERN.fullmatch(project):
        raise UsageError(NOT_A_PROJECT.format(project=project), N_("see `mcpctl status -A`"))
    return project, [name.split("/", 1)[-1] for name in names]


def target(
    find: Callable[[], Config | None],
    home: Path | None,
    project: str | None,
    names: list[str],
    required: bool,
    judged: set[Path] | None = None,
    lenient: bool = False,
    trust: bool = False,
    explicit: bool = False,
) -> Target:
    """The project named (else the config `find` finds and loads, judged, its project; else the current
    directory's), its state dir, and its config: the found one if it is that project's, else the one its
    records were started from, judged by the trust rules before it is read (as a found one: unless
    `trust`). The state dir is judged before anything in it is read (`privdir.judge_home`), unless it is
    in `judged` (the homes the command judged already: once per command). `lenient` (stop, status): a
    config file, found or of its records, that does not load, or that the trust rules refuse, gives the
    project's records instead (`recorded`). `explicit`: the found file is the one the caller named (-f,
    `Manager(config=)`), which another project named too contradicts (exit 2)."""
    try:
        found = find()
    except (InvalidConfig, UntrustedFile) as exc:
        return _instead(exc, lenient, home, project, names, judged)
    if explicit and found is not None:
        agreed(found, project)
    if found is not None and project in (None, found.project):
        chosen = judged_home(home or found.home or default_home(), judged)
        paths, note = legacy.adopt(chosen, found.project, found.path, found.servers)
        return Target(paths, found, names, note)
    name = project or project_name(Path.cwd().name)  # no config file: the directory's project, as if it had one
    paths = legacy.paths_for(judged_home(home or default_home(), judged), name)
    path = config_file(paths)
    if path is None and required:
        if project is None:  # no project named, no config file found: none at all, as far as anyone can tell
            raise no_config_found()
        raise ConfigError(
            f"no config file is known for project {name!r} (no record of its servers names one that still exists)",
            "run the command in the project's directory, or pass -f PATH",
        )
    try:
        return Target(paths, trusted(path, trust) if path else empty_config(), names)
    except (InvalidConfig, UntrustedFile) as exc:
        return _instead(exc, lenient, home, name, names, judged)


def _instead(
    error: InvalidConfig | UntrustedFile,
    lenient: bool,
    home: Path | None,
    project: str | None,
    names: list[str],
    judged: set[Path] | None,
) -> Target:
    """What a config file that does not load (or is refused) leaves: the records (`recorded`) when
    `lenient`, else `error` itself."""
    if not lenient:
        raise error
    return recorded(error, home, project, names, judged)


def agreed(found: Config, project: str | None) -> None:
    """A usage error when the config file the caller named is another project's than the one named: either
    would be ignored silently (the records' file taken instead of it, or it applied to the wrong project)."""
    if project not in (None, found.project):
        values = {"path": found.path, "found": found.project, "project": project, "prefix": f"{project}/"}
        raise UsageError(DISAGREE.format(**values), DISAGREE_HINT.format(**values))


def trusted(path: Path, trust: bool) -> Config:
    """The config file a record names, loaded only once the trust rules took it, then its env files judged."""
    from mcpctl.config.load import load
    from mcpctl.config.trust import check_config, check_env_files

    check_config(path, explicit=False, trust=trust)
    config = load(path)
    check_env_files(config, explicit=False, trust=trust)
    return config


def recorded(
    error: InvalidConfig | UntrustedFile,
    home: Path | None,
    project: str | None,
    names: list[str],
    judged: set[Path] | None = None,
) -> Target:
    """For `stop` and `status`, which need nothing of a config but which project it is, when the config
    file does not load or the trust rules refuse it (it is not read then): the project named, else the one
    whose records were started from that file, with no server configured (its records say what runs),
    and the warning to say. `error` itself when no record is found, or one of `names` has none: what
    such a server is, only the config could say."""
    state = judged_home(home or default_home(), judged)
    paths = legacy.paths_for(state, project) if project is not None else started_from(state, error.path)
    known = set(paths.known_servers()) if paths is not None else set()
    if paths is None or not known or not known.issuperset(names):
        raise error
    if isinstance(error, UntrustedFile):
        warning = _("warning: {problem}; it was not read: stop and status go by the state dir's records")
    else:
        warning = _(
            "warning: {problem}; stop and status go by the state dir's records, start refuses it until it is fixed"
        )
    return Target(paths, empty_config(), names, warning.format(problem=_(error.message)))


def started_from(home: Path, path: Path) -> Paths | None:
    """The project whose newest record was started from the config file at `path`."""
    origin = str(path.absolute())
    newest: tuple[float, Paths] | None = None
    for paths in every(home):
        for record in records(paths):
            if record.config_file == origin and (newest is None or record.updated_at > newest[0]):
                newest = (record.updated_at, paths)
    return newest[1] if newest else None


def judged_home(home: Path, judged: set[Path] | None = None) -> Path:
    """`home`, refused (exit 1) when it is not a state dir mcpctl may trust; `judged` remembers it."""
    if judged is None or home not in judged:
        judge_home(home)
        if judged is not None:
            judged.add(home)
    return home


def records(paths: Paths) -> list[StateRecord]:
    found = []
    for name in paths.known_servers():
        with contextlib.suppress(CorruptState):
            record = read_record(paths.state_file(name))
            if record is not None:
                found.append(record)
    return found


def config_file(paths: Paths) -> Path | None:
    """The config file the project's newest record was started from, if it still exists."""
    for record in sorted(records(paths), key=lambda r: r.updated_at, reverse=True):
        if record.config_file and os.path.isfile(record.config_file):
            return Path(record.config_file)
    return None


def orphaned(record: StateRecord) -> bool:
    """Its config file is gone: nothing will apply it again (`mcpctl forget` drops it once it stops)."""
    return record.config_file is not None and not os.path.exists(record.config_file)


def every(home: Path) -> list[Paths]:
    """Each project of the state dir (and the old layout, while no project has adopted it)."""
    try:
        names = sorted(p.name for p in (home / "projects").iterdir() if p.is_dir())
    except OSError:
        names = []
    owner = legacy.owner(home)
    if owner is not None and owner not in names:
        names.append(owner)
    found = [legacy.paths_for(home, name) for name in names]
    old = Paths(home)
    return [*found, old] if owner is None and old.known_servers() else found


def observe_all(current: Target) -> list[Observation]:
    """Every server of every project in the state dir, each marked with its project (and orphaned)."""
    from dataclasses import replace

    from mcpctl.control.controller import Controller

    found = every(current.paths.home)
    if current.paths.project not in {p.project for p in found}:
        found.insert(0, current.paths)
    observations = []
    for paths in found:
        config = current.config if paths.project == current.paths.project else empty_config()
        names = sorted({*paths.known_servers(), *config.servers})
        for obs in Controller(paths, config).status(names):
            observations.append(replace(obs, project=paths.project or "-", orphaned=orphaned(obs.record)))
    return observations


def marked(observations: list[Observation]) -> list[Observation]:
    """The observations with their orphaned mark."""
    from dataclasses import replace

    return [replace(obs, orphaned=orphaned(obs.record)) for obs in observations]


def every_name(current: Target) -> list[str]:
    """The current project's configured names, then the other projects' servers as PROJECT/NAME."""
    qualified: set[str] = set()
    for paths in every(current.paths.home):
        if paths.project not in (None, current.paths.project):
            qualified.update(f"{paths.project}/{name}" for name in paths.known_servers())
    return [*current.config.servers, *sorted(qualified)]


def configs(current: Target) -> dict[str, Config]:
    """Each project's config: the current one's, and for the others the file their records name."""
    from mcpctl.config.load import load

    found = {current.paths.project or DEFAULT_PROJECT: current.config}
    for paths in every(current.paths.home):
        if paths.project is None or paths.project in found:
            continue
        path = config_file(paths)
        with contextlib.suppress(ConfigError):
            found[paths.project] = load(path) if path else empty_config()
    return dict(sorted(found.items()))
