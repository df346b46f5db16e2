"""Each client's subscriptions and log level on the shared session, through the multiplexer with fake
connections and a fake upstream. End to end, with a real shim and SDK clients: tests/test_client_state.py."""

from __future__ import annotations

import pytest

from mcpctl import protocol
from mcpctl.shim.loglevel import LogLevels
from mcpctl.shim.subscriptions import Subscriptions
from tests.unit.mux_fakes import Message, Rig, notification, request


@pytest.fixture
def rig() -> Rig:
    rig = Rig()
    rig.attach()
    return rig


def _methods(sent: list[Message]) -> list[tuple[str, object]]:
    return [(m["method"], m["params"]) for m in sent]


def test_a_uri_is_subscribed_upstream_once_and_unsubscribed_when_its_last_subscriber_leaves(rig: Rig) -> None:
    (a, a_conn), (b, b_conn) = rig.client(), rig.client()
    rig.mux.from_client(a, request(1, "resources/subscribe", uri="file:///x"))
    (up,) = rig.sent_up()
    rig.answer(up, {})
    rig.mux.from_client(b, request(1, "resources/subscribe", uri="file:///x"))
    assert rig.sent_up() == []  # the server has it already: answered here
    assert a_conn.take() == b_conn.take() == [protocol.result_response(1, {})]
    a_conn.close()
    assert rig.sent_up() == []  # b still holds it
    b_conn.close()
    assert _methods(rig.sent_up()) == [("resources/unsubscribe", {"uri": "file:///x"})]


def test_updates_go_only_to_the_uris_subscribers(rig: Rig) -> None:
    (a, a_conn), (_, b_conn) = rig.client(), rig.client()
    rig.mux.from_client(a, request(1, "resources/subscribe", uri="file:///x"))
    rig.answer(rig.sent_up()[0], {})
    a_conn.take()
    update = notification("notifications/resources/updated", uri="file:///x")
    rig.mux.from_upstream(update)
    rig.mux.from_upstream(notification("notifications/resources/updated", uri="file:///other"))
    assert (a_conn.take(), b_conn.take()) == ([update], [])
    changed = notification("notifications/resources/list_changed")
    rig.mux.from_upstream(changed)
    assert (a_conn.take(), b_conn.take()) == ([changed], [changed])  # list changes still go to all


def test_one_clients_unsubscribe_leaves_anothers_subscription(rig: Rig) -> None:
    (a, a_conn), (b, _) = rig.client(), rig.client()
    for peer in (a, b):
        rig.mux.from_client(peer, request(1, "resources/subscribe", uri="u"))
    rig.sent_up()
    rig.mux.from_client(b, request(2, "resources/unsubscribe", uri="u"))
    rig.mux.from_client(b, request(3, "resources/unsubscribe", uri="u"))  # not subscribed any more: nothing
    assert rig.sent_up() == []
    rig.mux.from_upstream(notification("notifications/resources/updated", uri="u"))
    assert a_conn.take()[-1]["method"] == "notifications/resources/updated"
    rig.mux.from_client(a, request(4, "resources/unsubscribe", uri="u"))
    assert _methods(rig.sent_up()) == [("resources/unsubscribe", {"uri": "u"})]


def test_the_upstream_level_is_the_most_verbose_asked_and_each_client_gets_its_own(rig: Rig) -> None:
    (a, a_conn), (b, b_conn), (_, c_conn) = rig.client(), rig.client(), rig.client()
    rig.mux.from_client(a, request(1, "logging/setLevel", level="warning"))
    assert _methods(rig.sent_up()) == [("logging/setLevel", {"level": "warning"})]
    rig.mux.from_client(b, request(1, "logging/setLevel", level="debug"))
    assert _methods(rig.sent_up()) == [("logging/setLevel", {"level": "debug"})]
    for level in ("debug", "info", "error"):
        rig.mux.from_upstream(notification("notifications/message", level=level, data=level))
    got = [[m["params"]["level"] for m in conn.take() if m.get("method")] for conn in (a_conn, b_conn, c_conn)]
    assert got == [["error"], ["debug", "info", "error"], ["debug", "info", "error"]]  # c set none: unfiltered
    rig.mux.from_client(a, request(2, "logging/setLevel", level="info"))
    assert rig.sent_up() == []  # debug covers it: answered here
    assert a_conn.take() == [protocol.result_response(2, {})]


def test_a_leaving_client_retunes_the_upstream_level(rig: Rig) -> None:
    (a, _), (b, b_conn) = rig.client(), rig.client()
    rig.mux.from_client(a, request(1, "logging/setLevel", level="error"))
    rig.mux.from_client(b, request(1, "logging/setLevel", level="debug"))
    for up in rig.sent_up():
        rig.answer(up, {})
    b_conn.close()
    assert _methods(rig.sent_up()) == [("logging/setLevel", {"level": "error"})]


def test_a_level_raised_by_its_only_client_is_sent_rewritten_to_what_the_others_need(rig: Rig) -> None:
    (a, _), (b, _) = rig.client(), rig.client()
    rig.mux.from_client(a, request(1, "logging/setLevel", level="info"))
    rig.mux.from_client(b, request(1, "logging/setLevel", level="debug"))
    rig.sent_up()
    rig.mux.from_client(b, request(2, "logging/setLevel", level="critical"))
    assert _methods(rig.sent_up()) == [("logging/setLevel", {"level": "info"})]


def test_malformed_or_unknown_requests_are_the_servers_to_answer(rig: Rig) -> None:
    peer, _ = rig.client()
    for message in (request(1, "logging/setLevel", level="loud"), request(2, "resources/subscribe")):
        rig.mux.from_client(peer, message)
    assert [m["params"] for m in rig.sent_up()] == [{"level": "loud"}, {}]


def test_the_bookkeeping_alone() -> None:
    subs, levels = Subscriptions(), LogLevels()
    assert subs.subscribe(1, "u")
    assert not subs.subscribe(2, "u")
    assert not subs.subscribe(1, "u")
    assert subs.leave(1) == []
    assert subs.leave(2) == ["u"]
    assert subs.uris() == []
    assert not subs.unsubscribe(3, "never")
    assert levels.ask(1, "info") == "info"
    assert levels.ask(1, "info") is None
    assert levels.leave(2) is None
    assert levels.leave(1) is None  # none left: the server keeps its level
    assert levels.upstream == "info"
    assert levels.wants(1, "debug")  # a client that left is unfiltered
