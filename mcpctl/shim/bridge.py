"""The shared session's bridge between eras: every client is served in its own era, whatever the server speaks.

A client's era is what it opens with: `initialize` makes it legacy, a request in the modern envelope
(`server/discover` among them) makes it modern. The server's era is the one its handshake settled
(`era.Handshake`). Across eras the bridge answers what the shim can answer itself (`initialize` from a
discover result, `server/discover` from an initialize result, `ping`, `logging/setLevel`, listen streams
over a legacy server), rewrites what goes up (the envelope added or stripped) and what comes down
(results completed, listen events turned into notifications and back). A modern server's discover
result is cached for its `ttlMs` (the shim's health check refreshes it).
"""

from __future__ import annotations

from mcpctl import protocol
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.shim import translate
from mcpctl.shim.translate import LEGACY, MODERN, Message

if TYPE_CHECKING:
    from mcpctl.shim.mux import Multiplexer, Peer, Route

# The shim's own listen stream on a modern server, whose events go to the legacy clients.
OWN_LISTEN = "mcpctl-listen"


class Bridge:
    """What the multiplexer asks at each crossing; `mux` is the multiplexer it serves."""

    def __init__(self, mux: Multiplexer) -> None:
        self.mux = mux
        self.era = LEGACY  # the server's
        self.discovered: Message = {}  # a modern server's discover result, and until when it is fresh
        self.fresh_until = 0.0

    def attach(self, era: str, result: Message) -> None:
        """The session is up in `era` (its handshake's `result`)."""
        self.era = era
        if era == MODERN:
            self.note_discover(result)

    def own_listen(self) -> Message | None:
        """The shim's listen stream on a modern server, for the change notifications its legacy clients get
        (sent past the max_concurrency gate: it is never answered while the stream lives)."""
        if self.era != MODERN:
            return None
        flags = {flag: True for flag, (_, cap) in translate.LISTEN_FLAGS.items() if cap in _caps(self.discovered)}
        params = {"_meta": translate.meta_of(translate.discover_request(None)), "notifications": flags}
        return {"jsonrpc": "2.0", "id": OWN_LISTEN, "method": "subscriptions/listen", "params": params}

    def note_discover(self, result: object) -> None:
        """A discover result seen (the handshake's, a client's, the health check's): cached by its hints."""
        if isinstance(result, dict) and translate.modern_version(result):
            ttl = result.get("ttlMs")
            self.discovered = result
            self.fresh_until = self.mux.clock() + (ttl / 1000 if isinstance(ttl, int | float) else 0.0)

    # -- a client's request ---------------------------------------------------------------------

    def answer(self, peer: Peer, message: Message) -> Message | None:
        """The shim's own answer to a client's request, or None to forward it."""
        method, request_id = message.get("method"), message["id"]
        if method == "initialize":
            return self._initialize(peer, message)
        if translate.is_modern(message):
            peer.era = MODERN
        if method == "server/discover":
            return self._discover(request_id)
        if self.era == MODERN and peer.era != MODERN:
            return self._legacy_on_modern(peer, str(method), message)
        if self.era == LEGACY and peer.era == MODERN and method == "subscriptions/listen":
            return self._listen(peer, message)
        return None

    def _initialize(self, peer: Peer, message: Message) -> Message | None:
        peer.era = LEGACY
        info = translate.params_of(message).get("clientInfo")
        peer.client_info = info if isinstance(info, dict) else {}
        if self.era == LEGACY:
            return None  # the multiplexer answers from the shim's own handshake
        capabilities = translate.params_of(message).get("capabilities")
        peer.capabilities = capabilities if isinstance(capabilities, dict) else {}
        wanted = translate.params_of(message).get("protocolVersion")
        return protocol.result_response(message["id"], translate.initialize_from_discover(self.discovered, wanted))

    def _discover(self, request_id: object) -> Message | None:
        if self.era == LEGACY:
            assert self.mux.init_result is not None
            return protocol.result_response(request_id, translate.discover_from_initialize(self.mux.init_result))
        if self.mux.clock() < self.fresh_until:
            return protocol.result_response(request_id, self.discovered)
        return None  # stale: the server answers, and the answer refreshes the cache

    def _legacy_on_modern(self, peer: Peer, method: str, message: Message) -> Message | None:
        if method == "ping":
            return protocol.result_response(message["id"], {})
        if method == "logging/setLevel":
            self.mux.shared.route(peer.number, message)  # the level filters what this client is sent
            return protocol.result_response(message["id"], {})
        if method in ("resources/subscribe", "resources/unsubscribe"):
            return translate.untranslatable(message["id"], f"{method} from a legacy client to a modern server")
        return None

    def _listen(self, peer: Peer, message: Message) -> Message | None:
        """A modern client's listen stream over a legacy server: its change notifications, as events."""
        assert self.mux.init_result is not None
        honoured = translate.honoured(translate.params_of(message).get("notifications"), _caps(self.mux.init_result))
        peer.listens[message["id"]] = honoured
        self.mux._reply(peer, translate.acknowledged(message["id"], honoured))
        return {}  # answered (the stream stays open): nothing more to send now

    def outgoing(self, peer: Peer, message: Message) -> Message:
        """A client's request as the server's era wants it."""
        if self.era == MODERN and peer.era != MODERN:
            return translate.enveloped(message, peer.client_info, peer.capabilities)
        if self.era == LEGACY and peer.era == MODERN:
            return translate.stripped(message)
        return message

    def forgets(self, peer: Peer, request_id: object) -> bool:
        """A client cancelled a listen stream the shim serves itself."""
        return peer.listens.pop(request_id, None) is not None

    # -- the server's messages ------------------------------------------------------------------

    def incoming(self, route: Route, message: Message) -> Message:
        """The server's answer to a client's request, as the client's era wants it."""
        peer, result = route.peer, message.get("result")
        if route.method == "server/discover" and self.era == MODERN:
            self.note_discover(result)
        if self.era == LEGACY and peer.era == MODERN:
            return translate.completed(route.method, message)
        if self.era == MODERN and peer.era != MODERN and isinstance(result, dict) and _asks_input(result):
            what = f"an input_required result of {route.method} for a legacy client"
            return translate.untranslatable(message.get("id"), what)
        return message

    def notification(self, method: str, message: Message) -> bool:
        """Deliver a notification of a listen stream or a change a modern client listens for; False: not
        one of those (the multiplexer routes it as before)."""
        subscription = translate.meta_of(message).get(translate.SUBSCRIPTION_KEY)
        if self.era == MODERN and subscription is not None:
            self._event(subscription, method, message)
            return True
        if self.era == LEGACY and method.endswith("/list_changed"):
            self._to_listeners(method, message)
        return False

    def _event(self, subscription: object, method: str, message: Message) -> None:
        if subscription == OWN_LISTEN:
            if method != "notifications/subscriptions/acknowledged":
                for peer in list(self.mux.peers.values()):
                    if peer.era != MODERN:
                        self.mux._reply(peer, translate.off_stream(message))
            return
        route = self.mux.routes.get(subscription) if isinstance(subscription, int) else None
        if route is not None:  # a client's own listen stream: its events under the client's own id
            self.mux._reply(route.peer, translate.on_stream(message, route.original_id))

    def _to_listeners(self, method: str, message: Message) -> None:
        for peer in list(self.mux.peers.values()):
            for subscription, flags in peer.listens.items():
                if any(translate.LISTEN_FLAGS[flag][0] == method for flag in flags):
                    self.mux._reply(peer, translate.on_stream(message, subscription))

    def delivers(self, peer: Peer, method: str) -> bool:
        """A legacy server's broadcast reaches a modern client only on its listen streams (sent above)."""
        return not (self.era == LEGACY and peer.era == MODERN and method.endswith("/list_changed"))

    def unanswerable(self, request_id: object, method: str) -> Message:
        """A legacy server's request that no legacy client can take; a modern client that waits on the
        server learns that the request could not reach it."""
        modern = [p for p in self.mux.peers.values() if p.era == MODERN and p.inflight]
        if not modern or method == "roots/list":
            from mcpctl.shim import asks

            return asks.unanswerable(request_id, method)
        what = f"the server's {method} request for a modern client (it would be an input_required result)"
        peer = max(modern, key=lambda p: p.last_request)
        original_id, upstream_id = list(peer.inflight.items())[-1]  # the newest: the call that made the server ask
        del peer.inflight[original_id]
        self.mux._forget(upstream_id)
        self.mux._reply(peer, translate.untranslatable(original_id, what))
        return translate.untranslatable(request_id, what)


def _asks_input(result: Message) -> bool:
    return result.get("resultType") == "input_required"


def _caps(result: Message) -> dict[str, Any]:
    capabilities = result.get("capabilities")
    return capabilities if isinstance(capabilities, dict) else {}
