"""Protocol eras without processes: the readiness handshake (`era.Handshake`) and the multiplexer's bridge
between a legacy client and a modern server, with fake connections and the fake clock. End to end, with
real servers and the SDK's clients, they are in tests/test_eras.py."""

from __future__ import annotations

from typing import Any

from mcpctl import protocol
from mcpctl.shim import era, translate
from tests.unit.mux_fakes import INIT_RESULT, Rig, notification, request

META = {translate.VERSION_KEY: "2026-07-28", translate.CLIENT_INFO_KEY: {"name": "c"}, translate.CAPABILITIES_KEY: {}}
DISCOVER = {
    "supportedVersions": ["2026-07-28"],
    "capabilities": {"tools": {"listChanged": True}},
    "cacheScope": "public",
    "ttlMs": 5000,
    "resultType": "complete",
    "_meta": {translate.SERVER_INFO_KEY: {"name": "modern", "version": "2"}},
}


def modern_rig() -> Rig:
    rig = Rig()
    rig.mux.attach(rig.upstream.append, DISCOVER, translate.MODERN)
    listen = rig.mux.bridge.own_listen()
    assert listen is not None
    rig.upstream.append(listen)  # as the session sends it, past the gate
    return rig


def test_the_probe_falls_back_to_initialize_on_an_error_or_silence_and_a_late_modern_answer_wins() -> None:
    hello = protocol.initialize_request()
    refused = era.Handshake(hello, probe=True, now=0.0)
    assert refused.opening()["method"] == "server/discover"
    assert refused.answer(protocol.method_not_found(era.PROBE_ID, "server/discover")) == hello
    silent = era.Handshake(hello, probe=True, now=0.0)
    assert silent.tick(era.PROBE_TIMEOUT - 0.1) is None
    assert silent.tick(era.PROBE_TIMEOUT) == hello
    # a slow dual-era server read the probe first: initialize is refused, then the probe is answered
    assert silent.answer(protocol.error_response(protocol.INIT_ID, -32022, "modern connection")) is None
    assert silent.answer(protocol.result_response(era.PROBE_ID, DISCOVER)) == ("modern", DISCOVER)
    pinned = era.Handshake(hello, probe=False, now=0.0)
    assert pinned.opening() == hello
    assert not pinned.probing


def test_a_legacy_client_of_a_modern_server_is_answered_and_enveloped() -> None:
    rig = modern_rig()
    (listen,) = rig.sent_up()  # the shim's own listen stream, for its legacy clients' list_changed
    assert listen["method"] == "subscriptions/listen"
    assert listen["params"]["notifications"]["toolsListChanged"]
    peer, conn = rig.client()
    init = request(
        1, "initialize", protocolVersion="2025-06-18", capabilities={"roots": {}}, clientInfo={"name": "old"}
    )
    rig.mux.from_client(peer, init)
    rig.mux.from_client(peer, request(2, "ping"))
    answered = conn.take()
    assert answered[0]["result"]["protocolVersion"] == "2025-06-18"
    assert answered[0]["result"]["serverInfo"] == {"name": "modern", "version": "2"}
    assert answered[1] == protocol.result_response(2, {})
    rig.mux.from_client(peer, request(3, "tools/call", name="echo"))
    (up,) = rig.sent_up()
    assert up["params"]["_meta"][translate.CLIENT_INFO_KEY] == {"name": "old"}
    assert up["params"]["_meta"][translate.CAPABILITIES_KEY] == {"roots": {}}
    rig.mux.from_upstream(protocol.result_response(up["id"], {"resultType": "input_required", "inputRequests": {}}))
    (refused,) = conn.take()
    assert refused["id"] == 3
    assert refused["error"]["code"] == translate.MISSING_TRANSLATION
    changed = notification("notifications/tools/list_changed", _meta={translate.SUBSCRIPTION_KEY: "mcpctl-listen"})
    rig.mux.from_upstream(changed)
    assert conn.take() == [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {}}]


def test_a_modern_clients_discover_is_cached_and_its_listen_events_come_under_its_own_id() -> None:
    rig = modern_rig()
    rig.sent_up()
    peer, conn = rig.client()
    rig.mux.from_client(peer, request("d", "server/discover", _meta=META))
    assert conn.take() == [protocol.result_response("d", DISCOVER)]  # fresh for ttlMs: the server is not asked
    rig.clock.advance(6)
    rig.mux.from_client(peer, request("d2", "server/discover", _meta=META))
    assert [m["method"] for m in rig.sent_up()] == ["server/discover"]  # stale: the server answers
    rig.mux.from_client(
        peer, request("L", "subscriptions/listen", _meta=META, notifications={"toolsListChanged": True})
    )
    (listen,) = rig.sent_up()
    assert listen["params"]["_meta"] == META  # its own envelope, untouched
    event: dict[str, Any] = notification(
        "notifications/tools/list_changed", _meta={translate.SUBSCRIPTION_KEY: listen["id"]}
    )
    rig.mux.from_upstream(event)
    assert conn.take() == [notification("notifications/tools/list_changed", _meta={translate.SUBSCRIPTION_KEY: "L"})]


def test_a_modern_client_of_a_legacy_server_is_stripped_completed_and_listens_through_the_shim() -> None:
    rig = Rig()
    rig.mux.attach(rig.upstream.append, {**INIT_RESULT, "capabilities": {"tools": {"listChanged": True}}})
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(1, "tools/list", _meta={**META, "progressToken": 7}))
    (up,) = rig.sent_up()
    assert set(up["params"]["_meta"]) == {"progressToken"}
    rig.mux.from_upstream(protocol.result_response(up["id"], {"tools": []}))
    (listed,) = conn.take()
    assert listed["result"] == {"tools": [], "resultType": "complete", "ttlMs": 0, "cacheScope": "private"}
    rig.mux.from_client(
        peer, request("L", "subscriptions/listen", _meta=META, notifications={"toolsListChanged": True})
    )
    (ack,) = conn.take()
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    rig.mux.from_upstream(notification("notifications/tools/list_changed"))
    assert conn.take() == [notification("notifications/tools/list_changed", _meta={translate.SUBSCRIPTION_KEY: "L"})]


def test_the_clis_client_speaks_the_modern_era_to_a_modern_server() -> None:
    import json
    import socket
    import threading
    import time

    from mcpctl.control.shim_client import Session

    ours, theirs = socket.socketpair()
    seen: list[dict[str, Any]] = []

    def shim() -> None:
        with theirs, theirs.makefile("rwb") as pipe:
            for line in pipe:
                message = json.loads(line)
                seen.append(message)
                pipe.write(protocol.encode(protocol.result_response(message["id"], DISCOVER)))
                pipe.flush()

    threading.Thread(target=shim, daemon=True).start()
    with Session(ours) as session:
        deadline = time.monotonic() + 10
        assert session.open(deadline) == DISCOVER
        session.ping(deadline)
        session.request("tools/list", None, deadline)
    assert [m["method"] for m in seen] == ["server/discover", "server/discover", "tools/list"]  # never initialize
    assert seen[2]["params"]["_meta"][translate.VERSION_KEY] == "2026-07-28"
