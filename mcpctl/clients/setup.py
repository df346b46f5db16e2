"""`mcpctl client setup`: import a client's servers into the mcpctl config, then rewrite each of its entries
to run `mcpctl connect NAME`. `plan` reads and decides, writing nothing; `carry_out` writes, under the
config lock, only files that still hold what `plan` read (exit 12 otherwise), after a backup of each.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from mcpctl.clients import files as client_files
from mcpctl.clients import mcpctl_toml, store
from mcpctl.clients.entry import connect_entry, connects_to
from mcpctl.clients.files import ClientFile, Entry
from mcpctl.clients.registry import Client
from mcpctl.config import importer
from mcpctl.config.document import digest, read_bytes, replace_file, writable, write_config
from mcpctl.errors import ConfigConflictError, ConfigError, UsageError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths
from mcpctl.redaction import Redactor

# The keys of an entry that say how to run the server; the others (autoApprove, timeout, ...) are the
# client's own and stay in the rewritten entry.
_TRANSPORT = frozenset(
    {"command", "args", "env", "cwd", "url", "type", "headers", "envFile", "env_file", "httpUrl", "serverUrl"}
    | {"http_headers", "env_http_headers", "bearer_token_env_var", "transport"}
)
# Setup's usage errors (English: --json carries them); KNOWN lets the CLI show them translated.
FIX_THE_FILE = N_("fix the file (or move it aside) and run setup again")
NO_SERVER, ITS_SERVERS, NONE = N_("{client} has no server {name!r}"), N_("its servers: {names}"), N_("none")
KNOWN = (NO_SERVER, ITS_SERVERS, *client_files.KNOWN)
# Why an entry is left as it is, and setup's notes (English: --json carries them); the CLI shows them
# translated: REASONS (an {error} a config problem), NOTES with their values as they are.
ALREADY = N_("already runs through mcpctl")
NOT_IMPORTED = N_("not imported: {error}")
DISABLED = N_("disabled in the client: not imported")
SSE_ONLY = N_("SSE-only: mcpctl cannot serve it, so the client keeps reaching it directly")
THEIRS = N_("imported, not rewritten: the file belongs to another user (uid {uid}), whose file stays theirs")
REASONS = (ALREADY, NOT_IMPORTED, DISABLED, SSE_ONLY, THEIRS)
RENAMED = N_("{name} ({path}): the mcpctl config has another server {same} with other settings; imported as {new}")
NOTES = (RENAMED, *importer.NOTES)


@dataclass(frozen=True)
class Rewrite(Record):
    """An entry setup rewrites to run through mcpctl, as it will be."""

    entry: Entry
    server: str
    table: dict[str, Any]  # the entry as it will be


@dataclass(frozen=True)
class Left(Record):
    """An entry setup leaves as it is, and why."""

    entry: Entry
    reason: str


@dataclass(frozen=True)
class Plan(Record):
    """What setup would write: the client's files and the mcpctl config, before and after."""

    client: Client
    files: tuple[ClientFile, ...]
    config: Path
    config_before: bytes | None
    config_after: bytes
    rewrites: tuple[Rewrite, ...]
    left: tuple[Left, ...]
    notes: tuple[str, ...]
    new_bytes: Mapping[Path, bytes] = field(default_factory=dict)

    def changes(self) -> bool:
        """Whether carrying it out writes anything: a new mcpctl config only when a server goes in it."""
        if self.new_bytes:
            return True
        if self.config_before is None:
            return bool(tomllib.loads(self.config_after.decode("utf-8")).get("servers"))
        return self.config_after != self.config_before

    def found(self) -> bool:
        """Whether the client has any config file here."""
        return any(f.content is not None for f in self.files)

    def touched(self) -> list[ClientFile]:
        return [f for f in self.files if f.path in self.new_bytes]

    def diff(self) -> str:
        """Unified diffs of the mcpctl config and of each client file that would change, every env and
        header value masked on every line (context and removed ones too)."""
        if not self.changes():
            return ""
        parts = [_diff(self.config, self.config_before, self.config_after)]
        parts += [_diff(f.path, f.content, self.new_bytes[f.path]) for f in self.touched()]
        return masked("".join(parts), self.secrets())

    def secrets(self) -> list[str]:
        """Literal env and header values of every entry read and of the mcpctl config, before and after."""
        tables = [e.table for f in self.files for e in f.entries]
        for content in (self.config_before, self.config_after):
            servers = _toml(content).get("servers")
            tables += [t for t in servers.values() if isinstance(t, dict)] if isinstance(servers, dict) else []
        found = []
        for table in tables:
            for key in ("env", "headers", "http_headers"):
                values = table.get(key)
                found += [v for v in (values.values() if isinstance(values, dict) else ()) if isinstance(v, str)]
        return sorted({value for value in found if value and "${" not in value})


def masked(text: str, secrets: list[str]) -> str:
    """`text` with each secret masked: as a quoted value wherever it stands (short ones too: "core"), and
    anywhere else when it is long enough to be told from ordinary text."""
    for secret in sorted(secrets, key=len, reverse=True):
        for quoted in {json.dumps(secret), json.dumps(secret, ensure_ascii=False)}:
            text = text.replace(quoted, '"***"')
        text = text.replace(f"'{secret}'", "'***'")
    return Redactor(secrets)(text)


def _toml(content: bytes | None) -> dict[str, Any]:
    try:
        return tomllib.loads((content or b"").decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError:
        return {}


@dataclass(frozen=True)
class Outcome(Record):
    """A plan carried out, with the backup of what it overwrote."""

    plan: Plan
    backup: store.Backup | None


def plan(client: Client, project: Path, config: Path, home: Path | None, only: list[str] | None, trust: bool) -> Plan:
    """What setup would do; reads the client's files and the mcpctl config, writes nothing. A client file
    the trust rules refuse is exit 2 (unless `trust`): its commands would run as the user's own."""
    found = [client_files.read(location, trust) for location in client.locations(project)]
    refused = [f.refused for f in found if f.refused]
    if refused:
        raise refused[0]
    problems = [f.problem for f in found if f.problem]
    if problems:
        raise UsageError(problems[0], FIX_THE_FILE)
    entries = [entry for f in found for entry in f.entries]
    _check_selection(client, entries, only)
    chosen = [e for e in entries if only is None or e.name in only]
    writable(config)
    config_before = read_bytes(config)
    imported, rewrites, left, notes = _import(chosen, config, config_before, home)
    rewrites, left = _ours_only(rewrites, left)
    config_after = mcpctl_toml.merged(config, config_before, imported)
    new_bytes = {}
    for f in found:
        tables = {r.entry.keys: r.table for r in rewrites if r.entry.location == f.location}
        if tables:
            new_bytes[f.path] = client_files.edited(f, tables)
    return Plan(
        client, tuple(found), config, config_before, config_after, tuple(rewrites), tuple(left), tuple(notes), new_bytes
    )


def carry_out(paths: Paths, chosen: Plan) -> Outcome:
    """Write the plan: the mcpctl config, a backup of each client file, then each file. The caller
    holds the config lock; every file must still hold what the plan read."""
    touched = chosen.touched()
    for f in touched:
        if digest(read_bytes(f.path)) != digest(f.content):
            raise ConfigConflictError.changed(f.path)
    if chosen.config_after != (chosen.config_before or b""):
        chosen.config.parent.mkdir(parents=True, exist_ok=True)
        write_config(paths, chosen.config, chosen.config_after, chosen.config_before)
    if not touched:
        return Outcome(chosen, None)
    backup = store.save_backup(paths, chosen.client.id, {f.path: f.content or b"" for f in touched})
    for f in touched:
        assert f.content is not None
        replace_file(f.path, chosen.new_bytes[f.path], f.content)
    store.record_setup(paths, chosen.client.id, [_written(r) for r in chosen.rewrites])
    return Outcome(chosen, backup)


def _written(rewrite: Rewrite) -> dict[str, Any]:
    return {
        "file": str(rewrite.entry.location.path.absolute()),
        "keys": list(rewrite.entry.keys),
        "entry": rewrite.table,
    }


def _check_selection(client: Client, entries: list[Entry], only: list[str] | None) -> None:
    unknown = sorted(set(only or ()) - {e.name for e in entries})
    if unknown:
        names = ", ".join(sorted({e.name for e in entries})) or NONE
        raise UsageError(NO_SERVER.format(client=client.label, name=unknown[0]), ITS_SERVERS.format(names=names))


def _import(
    entries: list[Entry], config: Path, config_before: bytes | None, home: Path | None
) -> tuple[dict[str, Any], list[Rewrite], list[Left], list[str]]:
    """The servers for the mcpctl config, and what becomes of each entry. A server is shared by name only
    with the same settings: one that differs from the config's own of that name (or from another entry's,
    in another file or project) gets a name of its own, NAME-2, ..., with a note."""
    existing = _toml(config_before).get("servers")
    taken: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
    servers: dict[str, Any] = {}
    rewrites: list[Rewrite] = []
    left: list[Left] = []
    notes: list[str] = []
    for entry in entries:
        if connects_to(entry.table) is not None:
            left.append(Left(entry, ALREADY))
            continue
        try:
            one = importer.from_entries(
                entry.location.path,
                {entry.name: entry.table},
                entry.base,
                config.absolute().parent,
                entry.inputs,
                url_is_sse=entry.location.url_is_sse,
                bare=entry.location.bare,
                dollar=entry.location.dollar,
            )
        except ConfigError as exc:
            left.append(Left(entry, NOT_IMPORTED.format(error=exc.message)))
            continue
        if entry.name not in one.document["servers"]:
            left.append(Left(entry, DISABLED))  # its note, once
            continue
        notes += one.notes
        table = _in_project(entry, one.document["servers"][entry.name])
        name = _free_name(entry.name, table, taken)
        if name != entry.name:
            said = {"same": repr(entry.name), "new": repr(name)}
            notes.append(RENAMED.format(name=entry.name, path=entry.location.path, **said))
        servers[name] = taken[name] = table
        if table.get("enabled") is False:
            left.append(Left(entry, SSE_ONLY))
            continue
        rewrites.append(Rewrite(entry, name, _rewritten(entry, name, config, home)))
    return servers, rewrites, left, list(dict.fromkeys(notes))


def _ours_only(rewrites: list[Rewrite], left: list[Left]) -> tuple[list[Rewrite], list[Left]]:
    """The rewrites of the user's own files; another user's file (taken with --trust) is never replaced:
    the replacement would be the user's, not its owner's. Its servers are still imported."""
    kept = []
    for rewrite in rewrites:
        owner = rewrite.entry.location.path.stat().st_uid
        if owner == os.getuid():
            kept.append(rewrite)
        else:
            left.append(Left(rewrite.entry, THEIRS.format(uid=owner)))
    return kept, left


def _in_project(entry: Entry, table: dict[str, Any]) -> dict[str, Any]:
    """A project's server runs in its project folder, as its client runs it (relative paths in its args)."""
    if entry.scope == "user" or "command" not in table or "cwd" in table:
        return table
    return {**table, "cwd": str(entry.base).replace("$", "$$")}  # a path, not a reference


def _free_name(name: str, table: dict[str, Any], taken: Mapping[str, Any]) -> str:
    """NAME, or the first of NAME-2, NAME-3, ... that is free or already holds these very settings."""
    candidate, number = name, 1
    while candidate in taken and taken[candidate] != table:
        number += 1
        candidate = f"{name}-{number}"
    return candidate


def _rewritten(entry: Entry, server: str, config: Path, home: Path | None) -> dict[str, Any]:
    """The entry running mcpctl connect, with the client's own keys (autoApprove, timeout, ...) kept."""
    typed = "type" in entry.table or entry.location.container == ("servers",)  # VS Code wants a type
    kept = {key: value for key, value in entry.table.items() if key not in _TRANSPORT}
    return {**({"type": "stdio"} if typed else {}), **connect_entry(server, config, home), **kept}


def _diff(path: Path, before: bytes | None, after: bytes) -> str:
    old = (before or b"").decode("utf-8", errors="replace").splitlines(keepends=True)
    new = after.decode("utf-8", errors="replace").splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, f"{path} (now)" if before is not None else "/dev/null", f"{path} (after)")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
