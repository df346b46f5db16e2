"""What each client of the shared session has asked the server to keep for it: resource subscriptions
and a log level (`subscriptions`, `loglevel`). The multiplexer asks this module which client requests
need the server, which server notifications a client gets, and what to tell the server when a client
leaves."""

from __future__ import annotations

from collections.abc import Iterator

from mcpctl.hints import Any
from mcpctl.shim.loglevel import LEVELS, LogLevels
from mcpctl.shim.subscriptions import Subscriptions

Message = dict[str, Any]


class PeerState:
    def __init__(self) -> None:
        self.subscriptions = Subscriptions()
        self.levels = LogLevels()

    def route(self, client: int, message: Message) -> Message | None:
        """The request to send upstream for a client's `message` (itself, or rewritten), or None when
        the shim answers it (an empty result) because the server already has what the client asked for."""
        method, params = message.get("method"), message.get("params")
        if not isinstance(params, dict):
            return message  # not one of ours, or malformed: the server's to answer
        value = params.get("level" if method == "logging/setLevel" else "uri")
        if not isinstance(value, str):
            return message  # not one of ours, or malformed: the server's to answer
        if method == "resources/subscribe":
            if self.subscriptions.has(client, value):
                return None
            return message if self.subscriptions.subscribe(client, value) else None
        if method == "resources/unsubscribe":
            return message if self.subscriptions.unsubscribe(client, value) else None
        if method == "logging/setLevel" and value in LEVELS:
            level = self.levels.ask(client, value)
            return None if level is None else {**message, "params": {**params, "level": level}}
        return message

    def delivers(self, client: int, method: str, params: dict[str, Any]) -> bool:
        """Whether a notification from the server that goes to clients at large reaches this one."""
        if method == "notifications/resources/updated":
            return self.subscriptions.has(client, params.get("uri"))
        if method == "notifications/message":
            return self.levels.wants(client, params.get("level"))
        return True

    def leave(self, client: int, ids: Iterator[int]) -> list[Message]:
        """The client is gone: the shim's own requests (ids from `ids`) that end what it alone held."""
        wanted = [("resources/unsubscribe", {"uri": uri}) for uri in self.subscriptions.leave(client)]
        level = self.levels.leave(client)
        if level is not None:
            wanted.append(("logging/setLevel", {"level": level}))
        return [{"jsonrpc": "2.0", "id": next(ids), "method": m, "params": p} for m, p in wanted]

    def renewal(self, ids: Iterator[int]) -> list[Message]:
        """For a new session of the server (a restart, or one after a crash): the shim's own requests that
        make again upstream what the clients still connected hold, their subscriptions and log level."""
        wanted = [("resources/subscribe", {"uri": uri}) for uri in self.subscriptions.uris()]
        if self.levels.upstream is not None:
            wanted.append(("logging/setLevel", {"level": self.levels.upstream}))
        return [{"jsonrpc": "2.0", "id": next(ids), "method": m, "params": p} for m, p in wanted]
