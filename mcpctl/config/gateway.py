"""The [gateway] table and the [groups.NAME] tables: read, checked, and turned into dataclasses."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path

from mcpctl.config.checks import BY_KIND
from mcpctl.config.model import Config, GatewayConfig, Problem
from mcpctl.hints import Any
from mcpctl.settings import Kind

_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})")
_FLAGS = ("insecure", "metrics_public", "auto_start")
PATHS = ("tls_cert", "tls_key")  # relative to the config file (config/importer.rebase moves them)
_FIELDS = frozenset({"listen", "allowed_origins", "max_sessions", "session_idle_timeout", *_FLAGS, *PATHS})


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gateway(table: object, path: Path, problems: list[Problem]) -> GatewayConfig | None:
    """The [gateway] table as a GatewayConfig, paths as written; None when it is absent or wrong (problems
    say why)."""
    if table is None:
        return None
    where = f"{path}: gateway"
    found = _gateway_problems(table, where)
    problems.extend(Problem(text, str(path), None, "gateway") for text in found)
    if found:
        return None
    assert isinstance(table, dict)
    values: dict[str, Any] = dict(table)
    if "allowed_origins" in values:
        values["allowed_origins"] = tuple(values["allowed_origins"])
    if "session_idle_timeout" in values:
        values["session_idle_timeout"] = float(values["session_idle_timeout"])
    return GatewayConfig(**values)


def _gateway_problems(table: object, where: str) -> list[str]:
    if not isinstance(table, dict):
        return [f"{where}: expected a table of settings ([gateway] listen = ...)"]
    problems = [f"{where}: unknown field {key!r}" for key in sorted(set(table) - _FIELDS)]
    listen = table.get("listen", "127.0.0.1:8765")
    match = _LISTEN.fullmatch(listen) if isinstance(listen, str) else None
    if match is None or not 0 < int(match.group(2)) < 65536:
        problems.append(f'{where}.listen: expected "HOST:PORT" (such as "127.0.0.1:8765"), got {listen!r}')
    for key in _FLAGS:
        if key in table and not isinstance(table[key], bool):
            problems.append(f"{where}.{key}: expected true or false")
    sessions = table.get("max_sessions", 1)
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1:
        problems.append(f"{where}.max_sessions: expected a whole number of sessions per token, 1 or more")
    idle = BY_KIND[Kind.SECONDS](table.get("session_idle_timeout", 1))
    if idle is not None:
        problems.append(f"{where}.session_idle_timeout: {idle}")
    for key in PATHS:
        if key in table and not (isinstance(table[key], str) and table[key]):
            problems.append(f"{where}.{key}: expected the path of a PEM file")
    origins = table.get("allowed_origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) and o for o in origins):
        problems.append(f'{where}.allowed_origins: expected a list of origins such as "https://app.example.com"')
    if ("tls_cert" in table) != ("tls_key" in table):
        problems.append(f"{where}: tls_cert and tls_key go together")
    exposed = match is not None and not problems and not is_loopback(match.group(1).strip("[]"))
    if exposed and "tls_cert" not in table and table.get("insecure") is not True:
        problems.append(
            f"{where}.listen: {listen} is reachable from other machines: set tls_cert and tls_key, "
            "or insecure = true to serve plain HTTP on purpose"
        )
    return problems


def tls_problems(config: Config) -> list[Problem]:
    """What would keep the gateway from serving TLS: a tls_cert or tls_key that cannot be read, holds no
    PEM certificate (or key), or a key that is not the certificate's. Asked by `config validate` and by the
    gateway before it listens; not by every load, since no other command reads these files."""
    gateway = config.gateway
    if gateway is None or not gateway.tls_cert or not gateway.tls_key:
        return []
    where, file = f"{config.path}: gateway", str(config.path)
    hint = "give tls_cert and tls_key the paths of a PEM certificate and its key (relative to the config file)"
    texts = {key: _pem(str(config.file_path(getattr(gateway, key))), kind) for key, kind in _PEM.items()}
    problems = [Problem(f"{where}.{key}: {why}", file, None, "gateway", hint) for key, why in texts.items() if why]
    if problems:
        return problems
    import ssl  # only the gateway and `config validate` need it

    cert, key = config.file_path(gateway.tls_cert), config.file_path(gateway.tls_key)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key), password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        why = getattr(exc, "reason", None) or exc
        text = f"{where}.tls_key: {key} does not load as the key of {cert} ({why})"
        return [Problem(text, file, None, "gateway", hint)]
    return []


_PEM = {  # field -> (what it holds, how its PEM block begins)
    "tls_cert": ("certificate", re.compile(r"-----BEGIN CERTIFICATE-----")),
    "tls_key": ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
}


def _pem(path: str, kind: tuple[str, re.Pattern[str]]) -> str | None:
    """Why the PEM file at `path` is not what its field needs; None when it reads as such."""
    try:
        with open(path, "rb") as pem:
            text = pem.read(1024 * 1024).decode("ascii", "replace")
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return None if kind[1].search(text) else f"{path} holds no PEM {kind[0]}"


def groups(
    tables: Mapping[str, Any], servers: Mapping[str, object], path: Path
) -> tuple[dict[str, tuple[str, ...]], list[Problem]]:
    """[groups.NAME] servers = [...] as {NAME: (server, ...)}; every member must be a configured server."""
    found: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    for name, table in tables.items():
        where = f"{path}: groups.{name}"
        members = table.get("servers") if isinstance(table, dict) else None
        if not isinstance(table, dict) or set(table) != {"servers"} or not isinstance(members, list):
            problems.append(Problem(f"{where}: expected servers = [NAME, ...] and nothing else", str(path)))
            continue
        unknown = [m for m in members if m not in servers]
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name):
            problems.append(Problem(f"{where}: invalid group name (letters, digits, '_' or '-')", str(path)))
            continue
        if unknown or not members:
            text = f"{where}.servers: unknown server {unknown[0]!r}" if unknown else f"{where}.servers: empty"
            problems.append(Problem(text, str(path), None, "groups"))
            continue
        found[name] = tuple(members)
    return found, problems
