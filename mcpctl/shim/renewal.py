"""What a new session of the server owes the clients that outlived the old one (a restart in place, or
one by policy after a crash): a `list_changed` for tools and for each other list the new server offers,
so that every client fetches them again. (Their subscriptions and log level are made again upstream
from what the multiplexer holds for each client: `peer_state.PeerState.renewal`.)
"""

from __future__ import annotations

from mcpctl.hints import Any

Message = dict[str, Any]


def list_changes(init_result: Message) -> list[Message]:
    """tools/list_changed always (a client with tools refetches them), prompts and resources where declared."""
    capabilities = init_result.get("capabilities")
    declared = capabilities if isinstance(capabilities, dict) else {}
    kinds = ["tools", *(kind for kind in ("prompts", "resources") if kind in declared)]
    return [{"jsonrpc": "2.0", "method": f"notifications/{kind}/list_changed"} for kind in kinds]
