"""The state dir's layout before projects (servers/NAME, logs/NAME.log, run/NAME.sock, config/) and its
adoption by the project that used it.

That project is the one whose config file applied the newest version in config/history, or, with no
history, the first whose config names a server found there. Its first command records it in
projects/legacy.json and moves, under the state lock, the config history and every server whose shim is
gone (directory, logs) to projects/PROJECT/. A server whose shim still runs is left where it is, and
found there (`Paths.legacy`), so it keeps running untouched; it moves once that shim has gone (at the
project's next command, or before its next start).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from mcpctl.paths import Paths
from mcpctl.privdir import read_own
from mcpctl.state import lock_holder, state_lock, write_atomic


def paths_for(home: Path, project: str) -> Paths:
    """The project's paths, with the servers it owns in the old layout (if it adopted that layout)."""
    return Paths(home, project, _old_names(home) if owner(home) == project else frozenset())


def owner(home: Path) -> str | None:
    try:
        found = json.loads(read_own(home / "projects" / "legacy.json")).get("project")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def adopt(home: Path, project: str, config_path: Path | None, configured: Iterable[str]) -> tuple[Paths, str | None]:
    """The project's paths after moving what can move; a one-line note when it adopted the old layout now."""
    if not (home / "servers").is_dir():
        return Paths(home, project), None
    current = owner(home)
    if current not in (None, project) or (current is None and not _claims(home, config_path, configured)):
        return paths_for(home, project), None
    with state_lock(home / "lock"):
        current = owner(home)
        if current is None:
            _take(home, project)
        elif current != project:
            return paths_for(home, project), None
        paths = paths_for(home, project)
        names = sorted(paths.legacy)
        kept = [name for name in names if not move(paths, name)]
        _tidy(home)
    if current is not None:
        return Paths(home, project, frozenset(kept)), None
    note = f"mcpctl: the state dir's servers ({', '.join(names) or 'none'}) now belong to project {project!r}"
    if kept:
        note += f"; still running in the old layout until stopped (untouched): {', '.join(kept)}"
    return Paths(home, project, frozenset(kept)), note


def move(paths: Paths, name: str) -> bool:
    """Move a server of the old layout into the project, unless a shim still holds it; the caller holds
    the state lock. Whether it moved."""
    old = Paths(paths.home)
    source, dest = old.server_dir(name), paths.servers / name
    if not source.is_dir() or dest.exists() or lock_holder(old.instance_lock(name)) is not None:
        return False
    logs = old.log_files(name)
    paths.ensure()
    os.rename(source, dest)
    for log in logs:
        os.rename(log, paths.logs / log.name)
    for stale in (old.socket(name), old.control_socket(name)):
        with contextlib.suppress(OSError):
            stale.unlink()
    return True


def _claims(home: Path, config_path: Path | None, configured: Iterable[str]) -> bool:
    if config_path is None:
        return False
    source = _newest_source(home)
    if source is not None:
        return Path(source).absolute() == config_path.absolute()
    return bool(_old_names(home) & set(configured))


def _newest_source(home: Path) -> str | None:
    files = sorted((home / "config" / "history").glob("[0-9]*.json"))
    for path in reversed(files):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            source = json.loads(read_own(path)).get("source")
            if isinstance(source, str) and source:
                return source
    return None


def _take(home: Path, project: str) -> None:
    """Record the owner, and give it the old config history and secret key (applied.json's digests use it)."""
    paths = Paths(home, project)
    paths.ensure()
    if (home / "config").is_dir() and not paths.config_dir.exists():
        os.rename(home / "config", paths.config_dir)
    write_atomic(home / "projects" / "legacy.json", json.dumps({"project": project}).encode() + b"\n")


def _old_names(home: Path) -> frozenset[str]:
    return frozenset(Paths(home).known_servers())


def _tidy(home: Path) -> None:
    for directory in (home / "servers", home / "logs"):
        with contextlib.suppress(OSError):
            directory.rmdir()  # only when empty: what still runs there keeps it
