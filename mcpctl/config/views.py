"""What a server runs, field by field, without its secrets.

A *view* is every setting of one server as plain JSON, the way `apply`, `config diff` and the version
history see it: env values, and args that contain one, become `***redacted:DIGEST` (an HMAC under a key
kept in the state dir, so equal values give equal digests and nothing else can be learnt from them),
a bare `${VAR}` reference stays as written, and the contents of its env_files become digests too.

`config_hash` is the short digest of every setting a running shim acts on; each shim's state record
carries the one it runs, so `status` sees at once when the file says something else. Next to the
record, `applied.json` keeps the view the shim was given, so `apply` can tell which fields changed.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mcpctl.config.environment import env_file_paths, read_env_file
from mcpctl.config.model import Config, ServerConfig
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.lean import sha256_hex
from mcpctl.privdir import open_own, read_own
from mcpctl.settings import BY_NAME, NAMES, SETTINGS, Impact, having

if TYPE_CHECKING:
    from mcpctl.paths import Paths

RESTART, UPDATE, NO_EFFECT = Impact.RESTART, Impact.UPDATE, Impact.NONE
# What a change of each field of a view needs: each setting's impact (mcpctl.settings), and a restart
# when what its env files hold changed.
RESTART_FIELDS = (*having(Impact.RESTART), "env_file_contents")
# What the config hash covers: every setting a running shim acts on (not the per-command ones).
_HASHED = tuple(setting.name for setting in SETTINGS if setting.impact != Impact.NONE)
REDACTED = "***redacted:"
_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_MIN_SECRET_LENGTH = 3  # as in redaction.py: shorter values would mask ordinary words


def impact(field: str) -> Impact:
    """restart, update or none: what a change of `field` (or of one of its entries) needs."""
    top = field.split(".", 1)[0]
    if top in RESTART_FIELDS:
        return RESTART
    return BY_NAME[top].impact if top in BY_NAME else NO_EFFECT


def config_hash(config: Config, server: ServerConfig) -> str:
    """A short digest of everything a running shim acts on (not the per-command timeouts and rules)."""
    payload = {name: plain(getattr(server, name)) for name in _HASHED}
    payload["alerts"] = config.alerts_for(server)
    payload["env_file_contents"] = {
        str(path): sha256_hex(content) if content is not None else None
        for path, content in _env_file_contents(config, server).items()
    }
    blob = json.dumps(payload, sort_keys=True, default=plain).encode()
    return sha256_hex(blob)[:12]


def view(config: Config, server: ServerConfig, key: bytes) -> dict[str, Any]:
    """Every setting of `server` as JSON, its secrets replaced by keyed digests."""
    result = {name: plain(getattr(server, name)) for name in NAMES}
    result["env"] = {name: _redact_env(value, key) for name, value in server.env.items()}
    result["args"] = _redact_args(server.args, server.env, key)
    result["headers"] = {name: _redact_env(value, key) for name, value in server.headers.items()}
    result["url"] = _redact_url(server.url, server.env, key)
    result["alerts"] = plain(config.alerts_for(server))
    result["env_file_contents"] = {
        str(path): _seal_bytes(content, key) if content is not None else None
        for path, content in _env_file_contents(config, server).items()
    }
    return result


def redact_document(document: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A config document (config_file.document) with env values and args that hold them sealed."""
    servers = {}
    for name, table in document.get("servers", {}).items():
        env = table.get("env", {})
        sealed = dict(table)
        if env:
            sealed["env"] = {var: _redact_env(value, key) for var, value in env.items()}
        if "args" in table:
            sealed["args"] = _redact_args(table["args"], env, key)
        if table.get("headers"):
            sealed["headers"] = {var: _redact_env(value, key) for var, value in table["headers"].items()}
        if "url" in table:
            sealed["url"] = _redact_url(table["url"], env, key)
        servers[name] = sealed
    return {**document, "servers": servers}


def restore(
    document: Mapping[str, Any], sources: Sequence[Mapping[str, Any]], key: bytes
) -> tuple[dict[str, Any], list[str]]:
    """Unseal a redacted document with the values found in `sources` (documents with real values).

    Returns the document and the places whose value is in none of the sources (`servers.X.env.VAR`).
    """
    known = {_seal(value, key): value for source in sources for value in _strings(source)}
    missing: list[str] = []

    def unseal(value: str, where: str) -> str:
        if not value.startswith(REDACTED):
            return value
        if value in known:
            return known[value]
        missing.append(where)
        return value

    servers = {}
    for name, table in document.get("servers", {}).items():
        restored = dict(table)
        if "env" in table:
            restored["env"] = {var: unseal(v, f"servers.{name}.env.{var}") for var, v in table["env"].items()}
        if "headers" in table:
            restored["headers"] = {h: unseal(v, f"servers.{name}.headers.{h}") for h, v in table["headers"].items()}
        if "args" in table:
            restored["args"] = [unseal(arg, f"servers.{name}.args[{i}]") for i, arg in enumerate(table["args"])]
        if isinstance(table.get("url"), str):
            restored["url"] = unseal(table["url"], f"servers.{name}.url")
        servers[name] = restored
    return {**document, "servers": servers}, missing


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(REDACTED)


def secret_key(paths: Paths) -> bytes:
    """The state dir's key for digests of secrets (32 random bytes, 0600), made on first use."""
    path = paths.config_dir / "key"
    try:
        return read_own(path)
    except FileNotFoundError:
        pass
    paths.ensure_config()
    temp = path.with_name(f".key.{os.getpid()}.tmp")
    fd = open_own(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, os.urandom(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)  # fails if another command made one first: then theirs is the key
    except FileExistsError:
        pass
    finally:
        os.unlink(temp)
    return read_own(path)


# -- what each shim was given ---------------------------------------------------------------------


def remember(paths: Paths, config: Config, server: ServerConfig, digest: str | None = None) -> str:
    """Write the view of what `server`'s shim is about to run; returns its config hash (`digest`, when the
    caller has just computed it).

    The caller holds the state lock: the CLI is the only writer of applied.json. Not durable: like the
    record beside it, it describes a running shim, which a power cut ends too (and a torn file reads as
    no view).
    """
    from mcpctl.state import write_atomic

    digest = digest or config_hash(config, server)
    seen = view(config, server, secret_key(paths))
    known = _applied(paths, server.name)
    if known is not None and known.get("config_hash") == digest and known.get("view") == seen:
        return digest  # as it was: a restart of the same config writes nothing
    record = {"schema": 1, "config_hash": digest, "time": time.time(), "view": seen}
    paths.ensure_server(server.name)
    blob = json.dumps(record, indent=1, sort_keys=True).encode() + b"\n"
    write_atomic(paths.applied_file(server.name), blob, durable=False)
    return digest


def running_view(paths: Paths, name: str, running_hash: str | None) -> dict[str, Any] | None:
    """The view a shim running `running_hash` was given, if applied.json still describes it."""
    record = _applied(paths, name)
    if record is None or record.get("config_hash") != running_hash or running_hash is None:
        return None
    found = record.get("view")
    return found if isinstance(found, dict) else None


def applied_hash(paths: Paths, name: str) -> str | None:
    """The config hash in applied.json: what the last shim spawned for `name` was given."""
    found = (_applied(paths, name) or {}).get("config_hash")
    return found if isinstance(found, str) else None


def _applied(paths: Paths, name: str) -> dict[str, Any] | None:
    try:
        record = json.loads(read_own(paths.applied_file(name)))
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


# -- helpers --------------------------------------------------------------------------------------


def _env_file_contents(config: Config, server: ServerConfig) -> dict[Path, bytes | None]:
    contents: dict[Path, bytes | None] = {}
    for path in env_file_paths(server, config.base_dir):
        try:
            contents[path] = read_env_file(path)
        except (OSError, ValueError):
            contents[path] = None
    return contents


def _redact_args(args: Any, env: Mapping[str, str], key: bytes) -> list[str]:
    """Args as written, but one that contains an env value is sealed whole (as `list` masks it)."""
    secrets = [value for value in env.values() if len(value) >= _MIN_SECRET_LENGTH]
    return [_seal(arg, key) if any(secret in arg for secret in secrets) else arg for arg in args]


def _redact_url(url: Any, env: Mapping[str, str], key: bytes) -> Any:
    """A url that holds an env value is sealed whole, as args are."""
    return _redact_args([url], env, key)[0] if isinstance(url, str) else url


def _redact_env(value: str, key: bytes) -> str:
    return value if _REFERENCE.fullmatch(value) else _seal(value, key)


def _seal(value: str, key: bytes) -> str:
    return _seal_bytes(value.encode(), key)


def _seal_bytes(value: bytes, key: bytes) -> str:
    import hashlib
    import hmac

    return REDACTED + hmac.new(key, value, hashlib.sha256).hexdigest()[:20]


def _strings(document: Mapping[str, Any]) -> list[str]:
    found = []
    for table in document.get("servers", {}).values():
        if isinstance(table, Mapping):
            found += [v for v in dict(table.get("env", {})).values() if isinstance(v, str)]
            found += [v for v in dict(table.get("headers", {})).values() if isinstance(v, str)]
            found += [a for a in table.get("args", []) if isinstance(a, str)]
            found += [table["url"]] if isinstance(table.get("url"), str) else []
    return found


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """JSON's shapes: tuples become lists, mappings dicts (recursively). A scalar is known by its exact
    type first: most values are one, and asking `Mapping` about each took ~2 ms of a `status` of fifty."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
