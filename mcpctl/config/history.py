"""Applied config versions: config/history/NNNNNN.json in the state dir, the newest KEEP of them.

A version holds the config as applied (the document, its secrets sealed: see snapshot.py), the view
of every server, a digest of the file's bytes, when, by whom and why (`apply -m`). Never a secret.
"""

from __future__ import annotations

import json
import time
from dataclasses import field
from typing import Any

from mcpctl.config.document import digest, document
from mcpctl.config.model import Config
from mcpctl.config.views import redact_document, secret_key, view
from mcpctl.errors import UsageError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths
from mcpctl.privdir import read_own
from mcpctl.state import write_atomic

KEEP = 50
LATEST = ("last", "latest", "applied")
# 2: the document holds every top-level key of the config; 1 (before): no [gateway], no [groups.NAME].
SCHEMA = 2


@dataclass(frozen=True)
class Version(Record):
    """One applied config, as the history keeps it."""

    id: int
    time: float
    user: str
    note: str
    hash: str  # of the config file's bytes, as applied
    source: str  # the config file
    document: dict[str, Any]  # sealed
    views: dict[str, dict[str, Any]]
    failed: list[str] = field(default_factory=list)  # servers that did not start when it was applied
    schema: int = SCHEMA

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": _iso(self.time),
            "user": self.user,
            "note": self.note or None,
            "hash": self.hash,
            "source": self.source,
            "servers": sorted(self.views),
            "failed": self.failed,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            **self.summary(),
            "ts": self.time,
            "document": self.document,
            "views": self.views,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Version:
        return cls(
            id=int(data["id"]),
            time=float(data["ts"]),
            user=str(data.get("user", "")),
            note=str(data.get("note") or ""),
            hash=str(data["hash"]),
            source=str(data.get("source", "")),
            document=dict(data["document"]),
            views=dict(data["views"]),
            failed=list(data.get("failed", [])),
            schema=int(data.get("schema", 1)),
        )


def views_of(paths: Paths, config: Config) -> dict[str, dict[str, Any]]:
    key = secret_key(paths)
    return {name: view(config, server, key) for name, server in config.servers.items()}


def record(paths: Paths, config: Config, content: bytes, note: str, failed: list[str]) -> Version:
    """Store `config` (read as `content`) as the newest version; the caller holds the config lock."""
    paths.ensure_config()
    previous = listing(paths)
    version = Version(
        id=(previous[-1].id + 1) if previous else 1,
        time=time.time(),
        user=_user(),
        note=note,
        hash=digest(content) or "",
        source=str(config.path),
        document=redact_document(document(config), secret_key(paths)),
        views=views_of(paths, config),
        failed=failed,
    )
    blob = json.dumps(version.to_json(), indent=1).encode() + b"\n"  # key order: the document's
    write_atomic(paths.history / f"{version.id:06d}.json", blob)
    for old in previous[: max(0, len(previous) + 1 - KEEP)]:
        (paths.history / f"{old.id:06d}.json").unlink(missing_ok=True)
    return version


def completed(version: Version, doc: dict[str, Any], current: Config) -> dict[str, Any]:
    """`doc` (the version's document, unsealed) as the config to write back. A version recorded before
    schema 2 never held the gateway or the groups, and may lack `project` and `home` (the history is the
    state dir's of this project, so they were these): those of the current config are kept, each group
    whose servers the version has."""
    missing = unrecorded(version)
    if not missing:
        return doc
    now = document(current)
    kept = {key: now[key] for key in missing if key in now}
    servers = set(doc.get("servers", {}))
    groups = {name: t for name, t in kept.pop("groups", {}).items() if set(t["servers"]) <= servers}
    return {**doc, **kept, **({"groups": groups} if groups else {})}


def unrecorded(version: Version) -> tuple[str, ...]:
    """The top-level keys the version cannot say anything about: a version recorded before schema 2 never
    held [gateway] or [groups.*], and may lack `project` and `home` (as `completed` takes them)."""
    if version.schema >= 2:
        return ()
    return tuple(key for key in ("project", "home", "gateway", "groups") if key not in version.document)


def listing(paths: Paths) -> list[Version]:
    """Every readable version, oldest first (an unreadable file is passed over)."""
    versions = []
    try:
        files = sorted(paths.history.glob("[0-9]*.json"))
    except OSError:
        return []
    for path in files:
        try:
            versions.append(Version.from_json(json.loads(read_own(path))))
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
    return sorted(versions, key=lambda v: v.id)


def latest(paths: Paths) -> Version | None:
    found = listing(paths)
    return found[-1] if found else None


# How a missing version reads (English: --json carries it); KNOWN lets the CLI show it translated.
NONE_YET, NO_SUCH = N_("{whose} has no config version applied yet"), N_("no config version {ref!r} (there are {ids})")
PROJECT, HERE = N_("project {name!r}"), N_("this state dir")
APPLY_FIRST = N_(
    "run `mcpctl apply` to record one (a project renamed in its file keeps its versions under the old"
    " name: `mcpctl --project OLD config diff`)"
)
# A rollback whose version held secrets the current file and its backup no longer have (cli/config.py).
UNSTORED = N_("values never stored (secrets) and not in {path} or its backup: {missing}")
UNSTORED_HINT = N_("pass --placeholders to write ${VAR} references for env values, or restore them by hand")
KNOWN = (NONE_YET, NO_SUCH, PROJECT, UNSTORED)


def get(paths: Paths, ref: str) -> Version:
    """A version by number, or the newest ("last"); a usage error naming the ones there are."""
    found = listing(paths)
    if not found:
        whose = PROJECT.format(name=paths.project) if paths.project else HERE
        raise UsageError(NONE_YET.format(whose=whose), APPLY_FIRST)
    if ref in LATEST:
        return found[-1]
    chosen = next((v for v in found if str(v.id) == ref.lstrip("v")), None)
    if chosen is None:
        ids = f"{found[0].id}..{found[-1].id}"
        raise UsageError(NO_SUCH.format(ref=ref, ids=ids), N_("see `mcpctl config history`"))
    return chosen


def _user() -> str:
    import getpass
    import os

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + "Z"
