"""What a new session of the server owes the clients that outlived the old one (a restart in place, or
one by policy after a crash): their resource subscriptions, made again upstream, and a `list_changed`
for tools and for each other list the new server offers, so that every client fetches them again.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

Message = dict[str, Any]
# Ids of the shim's own re-subscriptions: strings, so their answers are no client's (mux routes int ids).
RESUBSCRIBE_ID = "mcpctl-resubscribe-"


class Subscriptions:
    """Which resources each client subscribed to (and did not unsubscribe from), by connection number."""

    def __init__(self) -> None:
        self.by_client: dict[int, set[str]] = {}

    def note(self, client: int, message: Message) -> None:
        """Look at one message from `client`; only subscribe and unsubscribe requests count."""
        method, params = message.get("method"), message.get("params")
        uri = params.get("uri") if isinstance(params, dict) else None
        if not isinstance(uri, str) or "id" not in message:
            return
        if method == "resources/subscribe":
            self.by_client.setdefault(client, set()).add(uri)
        elif method == "resources/unsubscribe" and client in self.by_client:
            self.by_client[client].discard(uri)

    def wanted(self, connected: Collection[int]) -> list[str]:
        """The URIs that clients still connected are subscribed to; the others are forgotten."""
        self.by_client = {client: uris for client, uris in self.by_client.items() if client in connected}
        return sorted(set().union(*self.by_client.values()))


def resubscriptions(uris: list[str]) -> list[Message]:
    return [
        {"jsonrpc": "2.0", "id": f"{RESUBSCRIBE_ID}{n}", "method": "resources/subscribe", "params": {"uri": uri}}
        for n, uri in enumerate(uris, 1)
    ]


def list_changes(init_result: Message) -> list[Message]:
    """tools/list_changed always (a client with tools refetches them), prompts and resources where declared."""
    capabilities = init_result.get("capabilities")
    declared = capabilities if isinstance(capabilities, dict) else {}
    kinds = ["tools", *(kind for kind in ("prompts", "resources") if kind in declared)]
    return [{"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"} for kind in kinds]
