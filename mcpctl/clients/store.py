"""What `client setup` keeps in the state dir: a timestamped backup of every file before it is rewritten
(`clients/backups/CLIENT/STAMP/`), and the entries it wrote (`clients/setup/CLIENT.json`, to see drift)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mcpctl.errors import UsageError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths
from mcpctl.privdir import private_dir

_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Backup(Record):
    """Copies of a client's files from before a setup, for restore."""

    client: str
    stamp: str
    folder: Path
    files: tuple[tuple[Path, Path], ...]  # (the client's file, the copy)


def root(paths: Paths) -> Path:
    return paths.home / "clients"


def save_backup(paths: Paths, client: str, originals: Mapping[Path, bytes]) -> Backup:
    """Copies of the files as they were, private (they may hold secrets)."""
    from mcpctl.config.document import write_file

    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime()) + f".{time.time_ns() % 10**9:09d}"
    folder = root(paths) / "backups" / client / stamp
    _private(folder)
    files = []
    for number, (path, content) in enumerate(originals.items()):
        copy = folder / f"{number}-{path.name}"
        write_file(copy, content)
        files.append((path.absolute(), copy))
    manifest = [{"path": str(path), "copy": copy.name} for path, copy in files]
    write_file(folder / _MANIFEST, json.dumps(manifest, indent=2).encode())
    return Backup(client, stamp, folder, tuple(files))


def backups(paths: Paths, client: str) -> list[Backup]:
    """The client's backups, oldest first."""
    found = []
    for folder in sorted((root(paths) / "backups" / client).glob("*/")):
        try:
            manifest = json.loads((folder / _MANIFEST).read_text())
        except (OSError, ValueError):
            continue  # a backup cut short: its manifest is written last
        files = tuple((Path(item["path"]), folder / item["copy"]) for item in manifest)
        found.append(Backup(client, folder.name, folder, files))
    return found


# Why there is nothing to restore (English: --json carries it); KNOWN lets the CLI show it translated.
NO_BACKUP, SETUP_FIRST = (
    N_("no backup of {client}'s files"),
    N_("`mcpctl client setup {client}` makes one before it writes"),
)
NO_SUCH, SEE_LIST = N_("no backup {stamp!r} of {client}"), N_("see `mcpctl client restore {client} --list`")
KNOWN = (NO_BACKUP, SETUP_FIRST, NO_SUCH, SEE_LIST)


def chosen_backup(paths: Paths, client: str, stamp: str | None) -> Backup:
    every = backups(paths, client)
    if not every:
        raise UsageError(NO_BACKUP.format(client=client), SETUP_FIRST.format(client=client))
    if stamp is None:
        return every[-1]
    for backup in every:
        if backup.stamp == stamp:
            return backup
    raise UsageError(NO_SUCH.format(stamp=stamp, client=client), SEE_LIST.format(client=client))


def record_setup(paths: Paths, client: str, written: Sequence[Mapping[str, Any]]) -> None:
    """The entries setup wrote (file, keys, entry), added to those of earlier setups of the client."""
    from mcpctl.config.document import write_file

    kept = {_key(item): item for item in setup_record(paths, client)}
    kept.update({_key(item): dict(item) for item in written})
    _private(root(paths) / "setup")
    write_file(root(paths) / "setup" / f"{client}.json", json.dumps(list(kept.values()), indent=2).encode())


def setup_record(paths: Paths, client: str) -> list[dict[str, Any]]:
    try:
        loaded = json.loads((root(paths) / "setup" / f"{client}.json").read_text())
    except (OSError, ValueError):
        return []
    return [item for item in loaded if isinstance(item, dict)] if isinstance(loaded, list) else []


def _key(item: Mapping[str, Any]) -> str:
    return json.dumps([item.get("file"), item.get("keys")])


def _private(folder: Path) -> None:
    private_dir(folder)  # made 0700 whatever the umask; an existing one must be ours alone (privdir)


def forget_setup(paths: Paths, client: str, files: Sequence[str]) -> None:
    """Drop what setup wrote to these files from the record (they were restored: the entries are gone)."""
    from mcpctl.config.document import write_file

    kept = [item for item in setup_record(paths, client) if item.get("file") not in files]
    if (root(paths) / "setup" / f"{client}.json").exists():
        write_file(root(paths) / "setup" / f"{client}.json", json.dumps(kept, indent=2).encode())
