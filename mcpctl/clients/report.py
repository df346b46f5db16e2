"""What `client list` and `client status` show: the clients' files, their servers, which go through
mcpctl, and the entries changed by hand since `client setup` wrote them (drift)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcpctl.clients import files as client_files
from mcpctl.clients import store
from mcpctl.clients.entry import connects_to
from mcpctl.clients.registry import CLIENTS, Client, Location
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths


@dataclass(frozen=True)
class FileReport(Record):
    """What one client file holds: how many servers, how many of them through mcpctl."""

    path: Path
    scope: str
    exists: bool
    servers: int
    through_mcpctl: int
    problem: str | None
    refused: str | None = None  # what to do about a file the trust rules refused (its hint)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "scope": self.scope,
            "exists": self.exists,
            "servers": self.servers,
            "through_mcpctl": self.through_mcpctl,
            "problem": self.problem,
            "refused": self.refused is not None,
        }


@dataclass(frozen=True)
class ClientReport(Record):
    """A client and what each of its files holds."""

    client: Client
    files: tuple[FileReport, ...]

    @property
    def found(self) -> bool:
        return any(f.exists for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.client.id,
            "name": self.client.label,
            "found": self.found,
            "servers": sum(f.servers for f in self.files),
            "through_mcpctl": sum(f.through_mcpctl for f in self.files),
            "files": [f.to_json() for f in self.files],
        }


@dataclass(frozen=True)
class EntryStatus(Record):
    """One server entry of a client file, and whether it is still as setup wrote it."""

    client: str
    file: Path
    scope: str
    name: str
    state: str  # "mcpctl" (as setup wrote it), "drift" (changed by hand since), "direct", "gone" (removed since setup)
    server: str | None  # the mcpctl server it connects to

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "file": str(self.file),
            "scope": self.scope,
            "name": self.name,
            "state": self.state,
            "server": self.server,
        }


def listing(project: Path, trust: bool) -> list[ClientReport]:
    """Every known client, with each of its config files as it is now (one the trust rules refuse, unread)."""
    return [ClientReport(client, tuple(_file_report(client, project, trust))) for client in CLIENTS]


def status(paths: Paths, clients: list[Client], project: Path, trust: bool) -> list[EntryStatus]:
    """Each entry of the clients' files (none of a file the trust rules refuse), and each entry setup
    wrote that is gone."""
    result: list[EntryStatus] = []
    for client in clients:
        wrote = {(item["file"], tuple(item["keys"])): item["entry"] for item in store.setup_record(paths, client.id)}
        seen = set()
        for f in (client_files.read(location, trust) for location in _locations(client, project, wrote)):
            for entry in f.entries:
                key = (str(f.path.absolute()), entry.keys)
                seen.add(key)
                result.append(_entry_status(client, entry, wrote.get(key)))
        for (file, keys), _ in wrote.items():
            if (file, keys) not in seen:
                result.append(EntryStatus(client.id, Path(file), "-", keys[-1], "gone", None))
    return result


def _locations(client: Client, project: Path, wrote: Mapping[tuple[str, Any], Any]) -> list[Location]:
    """The client's files found from `project`, and those setup wrote elsewhere (another project's)."""
    found = client.locations(project)
    here = {str(location.path.absolute()) for location in found}
    for file in dict.fromkeys(file for file, _ in wrote if file not in here):
        found += [loc for folder in Path(file).parents for loc in client.locations(folder) if str(loc.path) == file]
    return list({location.path: location for location in found}.values())


def _entry_status(client: Client, entry: client_files.Entry, wrote: Any) -> EntryStatus:
    server = connects_to(entry.table)
    drifted = wrote is not None and dict(entry.table) != wrote
    state = "drift" if drifted else "mcpctl" if server else "direct"
    return EntryStatus(client.id, entry.location.path, entry.scope, entry.name, state, server)


def _file_report(client: Client, project: Path, trust: bool) -> list[FileReport]:
    reports = []
    for location in client.locations(project):
        f = client_files.read(location, trust)
        ours = sum(1 for e in f.entries if connects_to(e.table))
        hint = f.refused.hint if f.refused else None
        reports.append(FileReport(location.path, location.scope, f.exists, len(f.entries), ours, f.problem, hint))
    return reports
