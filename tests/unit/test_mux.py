"""The multiplexer's routing, with fake connections, a fake upstream and a fake clock: no sockets, no
processes, no sleeps. The same behaviours end to end, through a real shim, are in tests/test_multiplexer.py."""

from __future__ import annotations

from typing import Any

import pytest

from mcpctl import protocol
from mcpctl.contract import Control
from mcpctl.errors import ErrorType, Failure
from mcpctl.shim.mux import TOKEN_PREFIX
from tests.unit.mux_fakes import (
    INIT_RESULT,
    LOST,
    SESSION_VERSION,
    WAIT_LIMIT,
    Message,
    Rig,
    error_type,
    notification,
    request,
)


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    rig.attach()
    return rig


# -- requests and answers --------------------------------------------------------------------------


def test_two_clients_with_the_same_id_each_get_only_their_own_answer(rig: Rig) -> None:
    (a, a_conn), (b, b_conn) = rig.client(), rig.client()
    rig.mux.from_client(a, request(1, "tools/call", name="echo"))
    rig.mux.from_client(b, request(1, "tools/call", name="slow"))
    to_a, to_b = rig.sent_up()
    assert to_a["id"] != to_b["id"]
    assert (to_a["method"], to_a["params"], to_b["params"]) == ("tools/call", {"name": "echo"}, {"name": "slow"})
    assert rig.answer(to_b, "for b")
    assert (a_conn.take(), b_conn.take()) == ([], [protocol.result_response(1, "for b")])
    assert rig.mux.from_upstream(protocol.error_response(to_a["id"], -1, "for a"))
    assert a_conn.take() == [protocol.error_response(1, -1, "for a")]
    assert rig.mux.take_counts() == (2, 1)
    assert rig.mux.take_counts() == (0, 0)


def test_an_answer_nobody_asked_for_is_left_to_the_shim(rig: Rig) -> None:
    _, conn = rig.client()
    assert not rig.mux.from_upstream(protocol.result_response(protocol.INIT_ID, {}))  # the shim's own ping
    assert not rig.mux.from_upstream(protocol.result_response(99, {}))
    assert conn.take() == []


def test_a_reused_id_in_flight_forgets_the_olderrequest(rig: Rig) -> None:
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(1, "tools/call", name="first", _meta={"progressToken": "t"}))
    rig.mux.from_client(peer, request(1, "tools/call", name="second"))
    first, second = rig.sent_up()
    rig.mux.from_upstream(
        notification("notifications/progress", progressToken=first["params"]["_meta"]["progressToken"])
    )
    assert not rig.answer(first)
    assert rig.answer(second, "second")
    assert conn.take() == [protocol.result_response(1, "second")]


def test_progress_tokens_are_rewritten_and_progress_reaches_only_the_asker(rig: Rig) -> None:
    (a, a_conn), (b, b_conn) = rig.client(), rig.client()
    for peer in (a, b):
        rig.mux.from_client(peer, request(1, "tools/call", name="slow", _meta={"progressToken": "t", "k": 1}))
    to_a, to_b = rig.sent_up()
    token_a, token_b = to_a["params"]["_meta"]["progressToken"], to_b["params"]["_meta"]["progressToken"]
    assert token_a != token_b
    assert token_a.startswith(TOKEN_PREFIX)
    assert token_b.startswith(TOKEN_PREFIX)
    assert to_a["params"]["_meta"]["k"] == 1  # the rest of _meta travels as it was
    rig.mux.from_upstream(notification("notifications/progress", progressToken=token_b, progress=1))
    assert a_conn.take() == []
    assert b_conn.take() == [notification("notifications/progress", progressToken="t", progress=1)]
    rig.answer(to_b)
    rig.mux.from_upstream(notification("notifications/progress", progressToken=token_b, progress=2))
    assert b_conn.take() == [protocol.result_response(1, "done")]  # the request is over: late progress is dropped


def test_a_client_cancelling_its_request_cancels_it_upstream(rig: Rig) -> None:
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(7, "tools/call", name="slow"))
    (up,) = rig.sent_up()
    rig.mux.from_client(peer, notification("notifications/cancelled", requestId=7, reason="bored"))
    assert rig.sent_up() == [notification("notifications/cancelled", requestId=up["id"], reason="bored")]
    assert not rig.answer(up)
    assert conn.take() == []


def test_other_client_notifications_are_forwarded(rig: Rig) -> None:
    peer, _ = rig.client()
    note = notification("notifications/roots/list_changed")
    rig.mux.from_client(peer, note)
    assert rig.sent_up() == [note]


# -- what the shim answers itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("2024-11-05", "2024-11-05"),  # known and older: the client's
        (SESSION_VERSION, SESSION_VERSION),
        ("2025-11-25", SESSION_VERSION),  # known but newer than the session: the server's
        ("2099-01-01", SESSION_VERSION),  # unknown: the server's
        (None, SESSION_VERSION),
    ],
)
def test_initialize_is_answered_from_the_shims_handshake(rig: Rig, wanted: str | None, expected: str) -> None:
    peer, conn = rig.client()
    rig.mux.from_client(peer, request("i", "initialize", protocolVersion=wanted, capabilities={}))
    assert conn.take() == [protocol.result_response("i", {**INIT_RESULT, "protocolVersion": expected})]
    assert rig.upstream == []


def test_initialized_is_swallowed_and_discover_is_method_not_found(rig: Rig) -> None:
    peer, conn = rig.client()
    rig.mux.from_client(peer, notification("notifications/initialized"))
    rig.mux.from_client(peer, request("d", "server/discover"))
    assert conn.take() == [protocol.method_not_found("d", "server/discover")]
    assert rig.upstream == []


def test_control_methods_are_refused_on_the_mcp_session_even_while_detached() -> None:
    rig = Rig()
    peer, conn = rig.client()
    rig.mux.from_client(peer, request("s", Control.STOP))
    rig.mux.from_client(peer, notification(Control.STOP))  # no id: nothing to answer, nothing done
    (answer,) = conn.take()
    assert answer["id"] == "s"
    assert answer["error"]["code"] == protocol.METHOD_NOT_FOUND
    assert "control method" in answer["error"]["message"]
    assert rig.upstream == []
    assert rig.mux.waiting == []


@pytest.mark.parametrize(
    ("message", "error_id"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, 1),
        (request(True, "tools/list"), None),
        (request(1.5, "tools/list"), None),
        (request(None, "tools/list"), None),
    ],
)
def test_malformed_requests_are_invalid(rig: Rig, message: Message, error_id: Any) -> None:
    peer, conn = rig.client()
    rig.mux.from_client(peer, message)
    (answer,) = conn.take()
    assert (answer["id"], answer["error"]["code"]) == (error_id, protocol.INVALID_REQUEST)
    assert rig.upstream == []


# -- from the server -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["notifications/tools/list_changed", "notifications/message"])
def test_server_notifications_are_broadcast_to_every_client(rig: Rig, method: str) -> None:
    conns = [rig.client()[1] for _ in range(3)]
    note = notification(method, uri="file:///x")
    assert rig.mux.from_upstream(note)
    assert [conn.take() for conn in conns] == [[note]] * 3


@pytest.mark.parametrize(
    ("method", "capability"),
    [("sampling/createMessage", "sampling"), ("roots/list", "roots"), ("elicitation/create", "elicitation")],
)
def test_a_server_request_goes_to_a_client_that_declared_the_capability(rig: Rig, method: str, capability: str) -> None:
    _, unable = rig.client(capabilities={})
    able, able_conn = rig.client(capabilities={capability: {}})
    rig.mux.from_upstream(request("s1", method, x=1))
    assert unable.take() == []
    (asked,) = able_conn.take()
    assert (asked["method"], asked["params"]) == (method, {"x": 1})
    rig.mux.from_client(able, protocol.result_response(asked["id"], {"ok": True}))
    assert rig.sent_up() == [protocol.result_response("s1", {"ok": True})]


def test_a_server_request_prefers_a_client_with_a_request_in_flight(rig: Rig) -> None:
    (busy, busy_conn), (idle, idle_conn) = rig.client({"roots": {}}), rig.client({"roots": {}})
    rig.mux.from_client(busy, request(1, "tools/call"))
    rig.clock.advance(5)
    rig.mux.from_client(idle, request(1, "tools/call"))  # newer, but answered
    rig.answer(rig.sent_up()[1])
    idle_conn.take()
    rig.mux.from_upstream(request("s1", "roots/list"))
    assert [m["method"] for m in busy_conn.take()] == ["roots/list"]
    assert idle_conn.take() == []


def test_among_idle_clients_the_latest_to_ask_answers(rig: Rig) -> None:
    (older, older_conn), (newer, newer_conn) = rig.client({"roots": {}}), rig.client({"roots": {}})
    for peer in (older, newer):
        rig.mux.from_client(peer, request(1, "tools/list"))
        rig.clock.advance(1)
    for up in rig.sent_up():
        rig.answer(up)
    rig.mux.from_upstream(request("s1", "roots/list"))
    assert [m.get("method") for m in newer_conn.take()] == [None, "roots/list"]
    assert older_conn.take() == [protocol.result_response(1, "done")]


@pytest.mark.parametrize("method", ["sampling/createMessage", "elicitation/create"])
def test_a_declared_request_no_connected_client_can_answer_is_an_internal_error(rig: Rig, method: str) -> None:
    _, unable = rig.client(capabilities={"roots": {}})
    peer, _ = rig.client(capabilities={"sampling": {}, "elicitation": {}})
    rig.mux.hangup(peer.conn)  # half-closed: it gets its answers, but is asked nothing new
    rig.mux.from_upstream(request("s1", method))
    (answer,) = rig.sent_up()
    assert (answer["id"], answer["error"]["code"]) == ("s1", protocol.INTERNAL_ERROR)
    assert answer["error"]["message"] == f"no connected client can answer {method} (none declared it)"
    assert unable.take() == []


def test_roots_with_no_client_that_has_roots_are_none(rig: Rig) -> None:
    _, conn = rig.client(capabilities={"sampling": {}})
    rig.mux.from_upstream(request("s1", "roots/list"))
    assert rig.sent_up() == [protocol.result_response("s1", {"roots": []})]
    assert conn.take() == []


def test_an_undeclared_server_request_nobody_takes_is_method_not_found(rig: Rig) -> None:
    rig.mux.from_upstream(request("s1", "x/custom"))
    assert rig.sent_up() == [protocol.method_not_found("s1", "x/custom")]


def test_a_client_with_roots_joining_tells_the_server_its_roots_changed(rig: Rig) -> None:
    for capabilities in ({}, {"roots": {"listChanged": True}}):
        peer, _ = rig.client()
        rig.mux.from_client(peer, request("init", "initialize", capabilities=capabilities))
    assert rig.sent_up() == [{"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}]
    rig.mux.from_client(peer, notification("notifications/roots/list_changed"))  # the client's own: forwarded
    assert rig.sent_up() == [notification("notifications/roots/list_changed")]


def test_the_servers_ping_is_answered_by_the_shim(rig: Rig) -> None:
    _, conn = rig.client(capabilities={})
    rig.mux.from_upstream(request(3, "ping"))
    assert rig.sent_up() == [protocol.result_response(3, {})]
    assert conn.take() == []


def test_the_server_cancelling_its_request_tells_the_client_asked(rig: Rig) -> None:
    _, conn = rig.client(capabilities={"roots": {}})
    rig.mux.from_upstream(request("s1", "roots/list"))
    (asked,) = conn.take()
    rig.mux.from_upstream(notification("notifications/cancelled", requestId="s1"))
    assert conn.take() == [notification("notifications/cancelled", requestId=asked["id"])]


# -- clients going away ----------------------------------------------------------------------------


def test_a_client_that_hangs_up_has_its_requests_cancelled_upstream(rig: Rig) -> None:
    (gone, gone_conn), (_, other_conn) = rig.client({"roots": {}}), rig.client()
    rig.mux.from_client(gone, request(1, "tools/call", _meta={"progressToken": "t"}))
    (up,) = rig.sent_up()
    rig.mux.from_upstream(request("s1", "roots/list"))
    gone_conn.take()
    gone_conn.close()
    cancelled, refused = rig.sent_up()
    assert cancelled == notification("notifications/cancelled", requestId=up["id"], reason="the client disconnected")
    assert (refused["id"], refused["error"]["code"]) == ("s1", protocol.INTERNAL_ERROR)
    assert gone.number not in rig.mux.peers
    rig.mux.from_upstream(notification("notifications/progress", progressToken=up["params"]["_meta"]["progressToken"]))
    assert not rig.answer(up)
    assert (gone_conn.take(), other_conn.take()) == ([], [])


def test_a_half_closed_client_gets_its_answers_then_is_finished(rig: Rig) -> None:
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(1, "tools/call"))
    rig.mux.hangup(conn)
    assert not conn.finished
    assert rig.sent_up()[0]["method"] == "tools/call"
    rig.mux.from_upstream(protocol.result_response(rig.mux.peers[peer.number].inflight[1], "late"))
    assert conn.take() == [protocol.result_response(1, "late")]
    assert conn.finished
    _, idle = rig.client()
    rig.mux.hangup(idle)
    assert idle.finished  # nothing in flight: finished at once


def test_a_slow_client_is_dropped_without_affecting_the_others(rig: Rig) -> None:
    (slow, slow_conn), (_, fast_conn) = rig.client(limit=2), rig.client()
    rig.mux.from_client(slow, request(1, "tools/call"))
    (up,) = rig.sent_up()
    notes = [notification("notifications/message", n=n) for n in range(4)]
    for note in notes:
        rig.mux.from_upstream(note)
    assert fast_conn.take() == notes
    assert slow_conn.closed
    assert slow.number not in rig.mux.peers
    assert rig.sent_up() == [
        notification("notifications/cancelled", requestId=up["id"], reason="the client disconnected")
    ]


# -- the session coming and going ------------------------------------------------------------------


def test_messages_sent_while_detached_wait_and_go_through_on_attach() -> None:
    rig = Rig()
    peer, conn = rig.client()
    rig.mux.from_client(peer, request("i", "initialize", protocolVersion="2024-11-05"))
    rig.mux.from_client(peer, request(2, "tools/list"))
    rig.mux.from_client(peer, notification("notifications/roots/list_changed"))
    assert rig.upstream == []
    assert conn.sent == []
    assert rig.mux.next_deadline() == rig.clock.mono + WAIT_LIMIT
    rig.attach()
    assert conn.take() == [protocol.result_response("i", {**INIT_RESULT, "protocolVersion": "2024-11-05"})]
    assert [m["method"] for m in rig.sent_up()] == ["tools/list", "notifications/roots/list_changed"]
    assert rig.mux.next_deadline() == float("inf")


def test_waiting_messages_expire_after_the_wait_limit() -> None:
    rig = Rig()
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(1, "tools/list"))
    rig.mux.from_client(peer, notification("notifications/roots/list_changed"))
    rig.clock.advance(WAIT_LIMIT - 0.1)
    rig.mux.expire()
    assert conn.sent == []
    assert len(rig.mux.waiting) == 2
    rig.clock.advance(0.1)
    rig.mux.expire()
    (answer,) = conn.take()  # the request is answered; the notification just goes
    assert (answer["id"], error_type(answer), answer["error"]["data"]["retryable"]) == (1, "timeout", True)
    assert "demo did not become ready" in answer["error"]["message"]
    assert rig.mux.waiting == []
    assert rig.mux.next_deadline() == float("inf")


def test_expire_takes_an_explicit_time_as_the_loop_gives_it() -> None:
    rig = Rig()
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(1, "tools/list"))
    rig.mux.expire(rig.clock.mono + WAIT_LIMIT, LOST)
    assert error_type(conn.take()[0]) == "connection_lost"


def test_a_waiting_client_that_goes_away_is_forgotten() -> None:
    rig = Rig()
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(1, "tools/list"))
    conn.close()
    rig.attach()
    assert rig.upstream == []
    assert rig.mux.waiting == []


def test_detach_answers_requests_in_flight_with_a_retryable_connection_lost(rig: Rig) -> None:
    (a, a_conn), (b, b_conn) = rig.client(), rig.client()
    rig.mux.from_client(a, request(1, "tools/call"))
    rig.mux.from_client(b, request("x", "tools/call"))
    rig.mux.hangup(b_conn)  # half-closed: finished once its answer is out
    old = rig.sent_up()
    rig.mux.detach(LOST)
    (to_a,), (to_b,) = a_conn.take(), b_conn.take()
    assert (to_a["id"], to_b["id"]) == (1, "x")
    assert to_a["error"] == {
        "code": protocol.MCPCTL_ERROR,
        "message": LOST.message,
        "data": {"type": "connection_lost", "hint": LOST.hint, "retryable": True},
    }
    assert b_conn.finished
    rig.attach()  # the restarted server: stale answers reach nobody, new requests go through
    assert not rig.answer(old[0])
    rig.mux.from_client(a, request(2, "tools/list"))
    assert rig.answer(rig.sent_up()[0], "new")
    assert a_conn.take() == [protocol.result_response(2, "new")]


def test_close_answers_everything_and_lets_every_client_go() -> None:
    rig = Rig()
    rig.attach()
    (busy, busy_conn), (_, idle_conn) = rig.client(), rig.client()
    rig.mux.from_client(busy, request(1, "tools/call"))
    rig.mux.detach(LOST)
    busy_conn.take()
    rig.mux.from_client(busy, request(2, "tools/list"))  # waits for a session that never comes
    rig.mux.close(Failure.of(ErrorType.NOT_RUNNING, name="demo"))
    assert error_type(busy_conn.take()[0]) == "not_running"
    assert busy_conn.flushed
    assert busy_conn.closed
    assert idle_conn.closed
    assert rig.mux.peers == {}
    assert rig.mux.waiting == []
