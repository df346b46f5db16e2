"""The log level of the shared session, per client.

MCP has one level per session (`logging/setLevel`), so the shim sets the server's level to the most
verbose one any connected client asked for, and gives each client that asked only the
`notifications/message` at or above its own level. A client that never set a level is not filtered: it
gets what the server sends, which is the server's default until some client sets a level. When a client
that set one leaves, the level is worked out again from those still connected; when none is left, the
server keeps its last level (MCP has no way back to a server's default).
"""

from __future__ import annotations

# RFC 5424's severities, as MCP names them, most verbose first.
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class LogLevels:
    """The level each client (by connection number) asked for, and the server's level."""

    def __init__(self) -> None:
        self.asked: dict[int, int] = {}  # client -> the index of its level in LEVELS
        self.upstream: str | None = None  # the level last set on the server; None: its default

    def ask(self, client: int, level: str) -> str | None:
        """A client's setLevel (of a level in LEVELS): the level to set upstream now, or None when the
        server's stays as it is."""
        self.asked[client] = LEVELS.index(level)
        return self._retune()

    def leave(self, client: int) -> str | None:
        """The client is gone: the level to set upstream now, or None."""
        if self.asked.pop(client, None) is None:
            return None
        return self._retune()

    def wants(self, client: int, level: object) -> bool:
        """Whether the client gets a log message of `level` (an unknown level reaches everyone)."""
        floor = self.asked.get(client)
        if floor is None or not isinstance(level, str) or level not in LEVELS:
            return True
        return LEVELS.index(level) >= floor

    def _retune(self) -> str | None:
        if not self.asked:
            return None
        wanted = LEVELS[min(self.asked.values())]
        if wanted == self.upstream:
            return None
        self.upstream = wanted
        return wanted
