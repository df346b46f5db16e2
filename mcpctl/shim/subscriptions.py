"""Resource subscriptions of the shared session, per client.

The server sees one session, so it holds one subscription per URI; the shim counts the clients behind
it: a URI is subscribed upstream when its first client subscribes and unsubscribed when its last one
unsubscribes or leaves, and `notifications/resources/updated` goes only to that URI's subscribers. A
client's second subscribe to the same URI changes nothing, and one unsubscribe ends its subscription.
"""

from __future__ import annotations


class Subscriptions:
    """Which clients (by connection number) are subscribed to which URIs."""

    def __init__(self) -> None:
        self.by_uri: dict[str, set[int]] = {}

    def subscribe(self, client: int, uri: str) -> bool:
        """Note the subscription; True when it is the URI's first (the server must be asked)."""
        clients = self.by_uri.setdefault(uri, set())
        first = not clients
        clients.add(client)
        return first

    def unsubscribe(self, client: int, uri: str) -> bool:
        """End the client's subscription; True when it was the URI's last (the server must be told)."""
        clients = self.by_uri.get(uri)
        if clients is None or client not in clients:
            return False
        clients.discard(client)
        if clients:
            return False
        del self.by_uri[uri]
        return True

    def leave(self, client: int) -> list[str]:
        """The client is gone: the URIs that no client is subscribed to any more."""
        held = [uri for uri, clients in self.by_uri.items() if client in clients]
        return [uri for uri in held if self.unsubscribe(client, uri)]

    def has(self, client: int, uri: object) -> bool:
        return isinstance(uri, str) and client in self.by_uri.get(uri, ())

    def uris(self) -> list[str]:
        """Every URI some client is subscribed to (what a new server session must be asked again)."""
        return list(self.by_uri)
