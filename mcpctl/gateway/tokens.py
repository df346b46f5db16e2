"""Bearer tokens of the gateway: created once (printed, never stored), kept as salted hashes (0600).

A token reads `mcpctl_<id>_<secret>`: the id finds its entry, the secret is checked against the hash in
constant time. Its scope is every server, a list of servers, or one group.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from mcpctl.errors import StateDirError, UsageError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.privdir import read_own
from mcpctl.state import state_lock, write_atomic

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TOKEN = re.compile(r"mcpctl_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ID = re.compile(r"[0-9a-f]{12}")  # a token's id; `token revoke` takes a name or an id, so no name may look like one


@dataclass(frozen=True)
class Token(Record):
    """One token's entry: never the token itself."""

    id: str
    name: str
    salt: str
    digest: str
    servers: tuple[str, ...] | None = None  # None: not limited to servers
    group: str | None = None
    created_at: float = 0.0
    expires_at: float | None = None
    revoked_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["servers"] = list(self.servers) if self.servers is not None else None
        return data

    def public(self) -> dict[str, Any]:
        """What `token list` shows: no salt, no digest."""
        return {k: v for k, v in self.to_json().items() if k not in ("salt", "digest")} | {"state": self.state()}

    def state(self, now: float | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (now or time.time()) >= self.expires_at:
            return "expired"
        return "active"

    def allows(self, server: str | None, group: str | None, members: tuple[str, ...] = ()) -> bool:
        """May this token reach `server` (one server), `group`, or the project's aggregate (both None)?"""
        if self.servers is None and self.group is None:
            return True
        if server is not None:
            return server in (self.servers or ()) or (self.group is not None and server in members)
        return group is not None and group == self.group


# A token command's usage errors (English: --json carries them); KNOWN lets the CLI show them translated.
NOT_A_DURATION, UNITS = (
    N_("--expires: expected a duration such as 30d, 12h or 90m, got {text!r}"),
    N_("units: s m h d w"),
)
BAD_NAME, NAME_CHARS = N_("invalid token name {name!r}"), N_("use letters, digits, '.', '_' or '-'")
ID_NAME = N_("invalid token name {name!r}: 12 hex digits are a token's id, which `token revoke` also takes")
OTHER_NAME = N_("choose another name (any that is not 12 hex digits)")
TAKEN, REVOKE_FIRST = N_("a token named {name!r} exists"), N_("revoke it first: `mcpctl token revoke {name}`")
KNOWN = (NOT_A_DURATION, ID_NAME, BAD_NAME, TAKEN, REVOKE_FIRST)


def parse_duration(text: str) -> float:
    """'30d', '12h', '90m', '3600s', '2w' in seconds; UsageError otherwise."""
    match = re.fullmatch(r"([0-9]+)([smhdw])", text.strip())
    if match is None or int(match.group(1)) == 0:
        raise UsageError(NOT_A_DURATION.format(text=text), UNITS)
    return int(match.group(1)) * _UNITS[match.group(2)]


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


class TokenStore:
    """The tokens file of a state dir; every change under its lock, written atomically with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: tuple[float, int, dict[str, Token]] | None = None

    def load(self) -> dict[str, Token]:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[:2] == (info.st_mtime, info.st_size):
            return self._cache[2]
        try:
            raw = json.loads(read_own(self.path))
            found = {t["id"]: _token(t) for t in raw["tokens"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateDirError(f"{self.path} is unreadable ({exc})", "revoke and recreate the tokens") from exc
        self._cache = (info.st_mtime, info.st_size, found)
        return found

    def create(
        self, name: str, servers: tuple[str, ...] | None, group: str | None, expires: float | None
    ) -> tuple[Token, str]:
        """A new token's entry and the token itself (shown once, never stored)."""
        if not NAME.fullmatch(name):
            raise UsageError(BAD_NAME.format(name=name), NAME_CHARS)
        if ID.fullmatch(name):
            raise UsageError(ID_NAME.format(name=name), OTHER_NAME)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        now = time.time()
        token = Token(secrets.token_hex(6), name, salt, _digest(salt, secret), servers, group, now)
        token = replace(token, expires_at=now + expires if expires else None)
        with self._locked() as tokens:
            if any(t.name == name and t.state() == "active" for t in tokens.values()):
                raise UsageError(TAKEN.format(name=name), REVOKE_FIRST.format(name=name))
            tokens[token.id] = token
        return token, f"mcpctl_{token.id}_{secret}"

    def revoke(self, name: str) -> list[Token]:
        with self._locked() as tokens:
            hits = [t for t in tokens.values() if name in (t.name, t.id) and t.revoked_at is None]
            for t in hits:
                tokens[t.id] = replace(t, revoked_at=time.time())
        return hits

    def verify(self, presented: str) -> tuple[Token | None, str]:
        """The token's entry and "ok", or None and why not: unknown, revoked or expired."""
        match = _TOKEN.fullmatch(presented)
        token = self.load().get(match.group(1)) if match else None
        if match is None or token is None or not hmac.compare_digest(token.digest, _digest(token.salt, match[2])):
            return None, "unknown"
        state = token.state()
        return (token, "ok") if state == "active" else (None, state)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Token]]:
        with state_lock(self.path.with_name("tokens.lock")):
            tokens = dict(self.load())
            yield tokens  # an error raised here leaves the file as it was
            self.save(tokens)

    def save(self, tokens: dict[str, Token]) -> None:
        body = {"tokens": [t.to_json() for t in tokens.values()]}
        write_atomic(self.path, json.dumps(body, indent=1).encode() + b"\n")


def _token(raw: dict[str, Any]) -> Token:
    servers = raw.get("servers")
    return Token(**{**raw, "servers": tuple(servers) if servers is not None else None})
