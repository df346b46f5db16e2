"""Requests from the server to its client (sampling, elicitation, roots): who answers them.

The shim's one handshake declares every client capability a connected client may have
(`protocol.CLIENT_CAPABILITIES`), because servers decide what to offer from that handshake alone and the
shim cannot know its future clients. So a server may ask when no connected client declared the
capability; the shim then answers for them: `roots/list` with no roots, the others with an error that
says no connected client can answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpctl import protocol
from mcpctl.hints import Any, Protocol, TypeVar

Message = dict[str, Any]

# Server-to-client requests, and the client capability that must be declared to be asked them.
CAPABILITY = {
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
    "elicitation/create": "elicitation",
}


class Askable(Protocol):
    """What picking a client needs of it (`mux.Peer` is one)."""

    capabilities: dict[str, Any]
    inflight: dict[Any, int]
    last_request: float
    hung_up: bool


P = TypeVar("P", bound=Askable)


def pick(peers: Iterable[P], method: str) -> P | None:
    """Who answers a server's request: the client with the newest request in flight that declared
    the capability, else the latest to ask of those that declared it."""
    capability = CAPABILITY.get(method)
    able = [p for p in peers if not p.hung_up and (capability is None or capability in p.capabilities)]
    busy = [p for p in able if p.inflight]
    pool = busy or able
    return max(pool, key=lambda p: p.last_request) if pool else None


def unanswerable(request_id: Any, method: str) -> Message:
    """The shim's answer to a server request no connected client can take."""
    if method == "roots/list":
        # No client, no roots: an empty list is the truthful answer, and servers take it as "none given"
        # and keep their own (server-filesystem keeps its command-line directories; an error would only
        # be logged as a failure on every start, since it asks right after the handshake).
        return protocol.result_response(request_id, {"roots": []})
    if method not in CAPABILITY:
        return protocol.method_not_found(request_id, method)
    # The capability is declared, so "method not found" (-32601) would be a lie; the SDKs report a
    # client that cannot do it now with an internal error (-32603) and the reason as its message.
    return protocol.error_response(
        request_id, protocol.INTERNAL_ERROR, f"no connected client can answer {method} (none declared it)"
    )
