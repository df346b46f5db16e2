"""`max_concurrency`: at most N client requests in flight to a server process; the rest wait their turn.

The gate sits between a multiplexer and the server's stdin (or HTTP relay): everything the multiplexer
sends upstream passes through it, and everything the server says is shown to it first. Only requests are
held; notifications and answers to the server's own requests always pass at once. Waiting requests are
taken in turn from each client (round robin), in arrival order within a client, so one busy client cannot
push the others to the back. A cancelled request that still waits is dropped (the server never saw it);
a cancelled one in flight frees its place at once, since a server does not answer what was cancelled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable

from mcpctl.hints import Any

Message = dict[str, Any]
Send = Callable[[Message], None]


class Gate:
    def __init__(self, send: Send, limit: int, owner: Callable[[Any], Hashable]) -> None:
        """`owner` tells which client an upstream request id belongs to (for taking turns)."""
        self.upstream = send
        self.limit = limit
        self.owner = owner
        self.inflight: set[Any] = set()
        self.waiting: dict[Hashable, deque[Message]] = {}  # client -> its requests, in arrival order; in turn order

    def send(self, message: Message) -> None:
        """What the multiplexer sends upstream."""
        if "method" in message and "id" in message:
            self._request(message)
        elif message.get("method") == "notifications/cancelled":
            self._cancelled(message)
        else:
            self.upstream(message)

    def seen(self, message: Message) -> None:
        """What the server sent: an answer to a request in flight frees its place."""
        if "method" not in message and message.get("id") in self.inflight:
            self.inflight.discard(message["id"])
            self._let_through()

    @property
    def queued(self) -> int:
        return sum(len(queue) for queue in self.waiting.values())

    def _request(self, message: Message) -> None:
        if len(self.inflight) < self.limit and not self.waiting:
            self._forward(message)
        else:
            self.waiting.setdefault(self.owner(message["id"]), deque()).append(message)

    def _cancelled(self, message: Message) -> None:
        params = message.get("params")
        request_id = params.get("requestId") if isinstance(params, dict) else None
        if self._drop(request_id):
            return  # it never reached the server: there is nothing to cancel there
        self.upstream(message)
        if request_id in self.inflight:
            self.inflight.discard(request_id)
            self._let_through()

    def _drop(self, request_id: Any) -> bool:
        for client, queue in self.waiting.items():
            for message in queue:
                if message["id"] == request_id:
                    queue.remove(message)
                    if not queue:
                        del self.waiting[client]
                    return True
        return False

    def _let_through(self) -> None:
        while self.waiting and len(self.inflight) < self.limit:
            client = next(iter(self.waiting))
            queue = self.waiting.pop(client)
            message = queue.popleft()
            if queue:
                self.waiting[client] = queue  # to the back of the line: the next client goes first
            self._forward(message)

    def _forward(self, message: Message) -> None:
        self.inflight.add(message["id"])
        self.upstream(message)


def gated(send: Send, limit: int | None, owner: Callable[[Any], Hashable]) -> tuple[Send, Callable[[Message], None]]:
    """How to send upstream through a gate of `limit` (none: straight), and what to show it of the server's words."""
    if limit is None:
        return send, ignore
    gate = Gate(send, limit, owner)
    return gate.send, gate.seen


def ignore(_message: Message) -> None:
    """Show nothing to no gate."""
