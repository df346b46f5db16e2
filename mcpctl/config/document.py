"""The config as a document (what export, import, rollback and the history write) and the one safe way
to write it.

A document is the config as TOML or JSON would hold it: every top-level key the loader reads
(model.TOP_LEVEL): `project` and `home` as written, each server's table with the settings that differ
from their defaults, `${VAR}` references as written (nothing from the shell is inlined), the global
[env_rules] and [alerts] tables, [gateway] (its settings that differ from their defaults, paths as
written) and the [groups.NAME] tables. Loading a written document gives back an equal config. MERGE
says how `config import` combines each key with the config it writes into.

Every write of the config file is atomic (temp file, fsync, rename, fsync of the folder), keeps the
previous file as PATH.bak, and happens under the config lock only if the file still holds what the
command read: a file changed by someone else in between is reported (exit 12), never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from mcpctl.config.model import Config, GatewayConfig, ServerConfig
from mcpctl.config.views import plain
from mcpctl.errors import ConfigConflictError, StateDirError, UsageError
from mcpctl.i18n import N_
from mcpctl.paths import Paths

FORMATS = ("toml", "json")
# The usage errors of this module (English: --json carries them); KNOWN lets the CLI show them translated.
NOT_A_FORMAT = N_("--format must be one of {formats}, not {chosen!r}")
CANNOT_READ = N_("cannot read {path}: {reason}")
JSON_CONFIG = N_("{path} is a JSON file: mcpctl writes its config as TOML")
IMPORT_IT = N_("import it into a TOML config: mcpctl -f mcpctl.toml config import {path}")
KNOWN = (NOT_A_FORMAT, CANNOT_READ, JSON_CONFIG, IMPORT_IT)


# How `config import` combines each top-level key of the imported document with the config's own.
NAMED = "by name"  # tables of NAME -> table: the imported ones over the current ones (--replace: servers replaced)
WHOLE = "whole"  # one table: the imported file's if it has one, else the current one
OWN = "own"  # the file's own: an existing config keeps its value, set or not, so its state dir never moves
MERGE = {
    "project": OWN,
    "home": OWN,
    "servers": NAMED,
    "env_rules": NAMED,
    "alerts": NAMED,
    "gateway": WHOLE,
    "groups": NAMED,
}


def document(config: Config) -> dict[str, Any]:
    """The config as a TOML/JSON-ready document: every top-level key the file holds, in MERGE's order."""
    every = {**config.servers, **config.disabled}
    doc: dict[str, Any] = {
        key: value for key, value in (("project", config.project_key), ("home", config.home_key)) if value
    }
    doc["servers"] = {name: server_table(server) for name, server in every.items()}
    if config.env_rules:
        doc["env_rules"] = plain(config.env_rules)
    if config.alerts:
        doc["alerts"] = plain(config.alerts)
    if config.gateway is not None:  # an empty [gateway] table is a gateway with its defaults: kept
        doc["gateway"] = _differing(config.gateway, GatewayConfig())
    if config.groups:
        doc["groups"] = {name: {"servers": list(members)} for name, members in config.groups.items()}
    return doc


def server_table(server: ServerConfig) -> dict[str, Any]:
    """The settings of `server` that differ from their defaults, in the dataclass's order."""
    return _differing(server, ServerConfig(name=server.name))  # the name is its default's: left out


def _differing(record: ServerConfig | GatewayConfig, defaults: ServerConfig | GatewayConfig) -> dict[str, Any]:
    return {
        spec.name: plain(getattr(record, spec.name))
        for spec in fields(record)
        if getattr(record, spec.name) != getattr(defaults, spec.name)
    }


def dumps(doc: Mapping[str, Any], fmt: str) -> str:
    """TOML (tomli-w) or JSON in the common {"mcpServers": {...}} shape, plus mcpctl's global tables; JSON
    holds a literal `$` as clients write it (dialect.client_form)."""
    if fmt == "json":
        from mcpctl.config.dialect import client_form

        servers = {name: client_form(table) for name, table in doc.get("servers", {}).items()}
        shaped = {"mcpServers": servers, **{k: v for k, v in doc.items() if k != "servers"}}
        return json.dumps(shaped, indent=2) + "\n"
    import tomli_w

    return tomli_w.dumps(dict(doc))


def format_for(path: Path | None, chosen: str | None) -> str:
    if chosen is not None:
        if chosen not in FORMATS:
            raise UsageError(NOT_A_FORMAT.format(formats=", ".join(FORMATS), chosen=chosen))
        return chosen
    return "json" if path is not None and path.suffix.lower() == ".json" else "toml"


def digest(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest()[:12] if data is not None else None


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, None if there is no file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(CANNOT_READ.format(path=path, reason=exc.strerror)) from exc


def writable(path: Path) -> None:
    """mcpctl writes TOML; a JSON config (a client's file) is read, never rewritten."""
    if path.suffix.lower() == ".json":
        raise UsageError(JSON_CONFIG.format(path=path), IMPORT_IT.format(path=path))


def write_config(paths: Paths, path: Path, data: bytes, expected: bytes | None) -> Path | None:
    """Replace the config at `path` with `data` if it still holds `expected` (None: there is no file).

    The previous file is kept as PATH.bak (returned). The caller holds the config lock.
    """
    current = read_bytes(path)
    if digest(current) != digest(expected):
        raise ConfigConflictError.changed(path)
    mode = 0o600
    backup = None
    if current is not None:
        mode = path.stat().st_mode & 0o777
        backup = path.with_name(path.name + ".bak")
        _atomic(backup, current, mode, lambda: None)

    def unchanged_since_read() -> None:
        if digest(read_bytes(path)) != digest(expected):  # as late as possible: just before the rename
            raise ConfigConflictError.changed(path)

    _atomic(path, data, mode, unchanged_since_read)
    return backup


def replace_file(path: Path, data: bytes, expected: bytes) -> None:
    """Atomically replace a file that is not mcpctl's (a client's config) if it still holds `expected`,
    checked just before the rename (exit 12 otherwise); its permissions are kept. A symlink (dotfiles)
    stays one: its target is replaced, in the target's folder."""
    path = linked(path)

    def unchanged_since_read() -> None:
        if digest(read_bytes(path)) != digest(expected):
            raise ConfigConflictError.changed(path)

    unchanged_since_read()
    _atomic(path, data, path.stat().st_mode & 0o777, unchanged_since_read)


def linked(path: Path) -> Path:
    """The file a path leads to through symlinks: the one to replace, so the link is kept."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def write_file(path: Path, data: bytes) -> None:
    """An atomic write of a file that is not the config (export -o): private, as it may hold secrets."""
    _atomic(path, data, 0o600, lambda: None)


def _atomic(path: Path, data: bytes, mode: int, before_rename: Callable[[], None]) -> None:
    import tempfile

    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StateDirError(f"cannot write {path}: {exc.strerror}", "check the folder's permissions") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        before_rename()
        os.replace(temp, path)
    except OSError as exc:
        raise StateDirError(f"cannot write {path}: {exc.strerror}", "check free space and permissions") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
