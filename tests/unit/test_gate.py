"""`max_concurrency`'s gate between the multiplexer and a fake server: what waits, what passes, in what order.
The real server behind a gate of 1 (and of none) is in tests/test_sharing.py."""

from __future__ import annotations

from typing import Any

from mcpctl import protocol
from mcpctl.shim.gate import Gate, gated
from mcpctl.shim.mux import Multiplexer
from tests.unit.fakes import FakeClock
from tests.unit.mux_fakes import INIT_RESULT, LOST, WAIT_LIMIT, FakeConnection, Message, notification, request


class GatedRig:
    """A multiplexer whose upstream goes through a gate of `limit`; `upstream` is what the server received."""

    def __init__(self, limit: int) -> None:
        self.upstream: list[Message] = []
        self.mux = Multiplexer("demo", wait_limit=WAIT_LIMIT, clock=FakeClock().monotonic)
        self.gate = Gate(self.upstream.append, limit, self._owner)
        self.mux.attach(self.gate.send, INIT_RESULT)
        self.numbers = iter(range(1, 1000))

    def _owner(self, upstream_id: Any) -> int:
        return self.mux.routes[upstream_id].peer.number

    def client(self) -> tuple[Any, FakeConnection]:
        conn = FakeConnection(next(self.numbers), self.mux.hangup)
        return self.mux.add(conn), conn

    def answer(self, upstream: Message) -> None:
        message = protocol.result_response(upstream["id"], "done")
        self.gate.seen(message)
        self.mux.from_upstream(message)

    def names(self) -> list[str]:
        return [m["params"]["name"] for m in self.upstream if m.get("method") == "tools/call"]


def test_one_request_at_a_time_the_next_as_the_answer_comes_back() -> None:
    rig = GatedRig(1)
    peer, conn = rig.client()
    for n in range(3):
        rig.mux.from_client(peer, request(n, "tools/call", name=f"call{n}"))
    assert rig.names() == ["call0"]
    assert rig.gate.queued == 2
    rig.answer(rig.upstream[0])
    assert rig.names() == ["call0", "call1"]
    rig.answer(rig.upstream[1])
    rig.answer(rig.upstream[2])
    assert rig.names() == ["call0", "call1", "call2"]
    assert [m["id"] for m in conn.take()] == [0, 1, 2]
    assert not rig.gate.inflight
    assert rig.gate.queued == 0


def test_waiting_requests_take_turns_across_clients_in_arrival_order_within_each() -> None:
    rig = GatedRig(1)
    (a, _), (b, _), (c, _) = rig.client(), rig.client(), rig.client()
    for n in range(3):
        rig.mux.from_client(a, request(n, "tools/call", name=f"a{n}"))
    rig.mux.from_client(b, request(0, "tools/call", name="b0"))
    rig.mux.from_client(b, request(1, "tools/call", name="b1"))
    rig.mux.from_client(c, request(0, "tools/call", name="c0"))
    while len(rig.names()) < 6:
        rig.answer(rig.upstream[-1])
    assert rig.names() == ["a0", "a1", "b0", "c0", "a2", "b1"]


def test_a_limit_of_two_keeps_two_in_flight() -> None:
    rig = GatedRig(2)
    peer, _ = rig.client()
    for n in range(4):
        rig.mux.from_client(peer, request(n, "tools/call", name=f"call{n}"))
    assert rig.names() == ["call0", "call1"]
    rig.answer(rig.upstream[1])
    assert rig.names() == ["call0", "call1", "call2"]
    assert len(rig.gate.inflight) == 2


def test_a_cancelled_waiting_request_leaves_the_queue_and_never_reaches_the_server() -> None:
    rig = GatedRig(1)
    peer, _ = rig.client()
    rig.mux.from_client(peer, request(1, "tools/call", name="first"))
    rig.mux.from_client(peer, request(2, "tools/call", name="second"))
    rig.mux.from_client(peer, request(3, "tools/call", name="third"))
    rig.mux.from_client(peer, notification("notifications/cancelled", requestId=2))
    assert [m.get("method") for m in rig.upstream] == ["tools/call"]  # no cancel for what the server never saw
    rig.answer(rig.upstream[0])
    assert rig.names() == ["first", "third"]


def test_a_cancelled_request_in_flight_is_cancelled_upstream_and_frees_its_place() -> None:
    rig = GatedRig(1)
    peer, _ = rig.client()
    rig.mux.from_client(peer, request(1, "tools/call", name="first"))
    rig.mux.from_client(peer, request(2, "tools/call", name="second"))
    first = rig.upstream[0]
    rig.mux.from_client(peer, notification("notifications/cancelled", requestId=1))
    cancel = rig.upstream[1]
    assert cancel["method"] == "notifications/cancelled"
    assert cancel["params"]["requestId"] == first["id"]
    assert rig.names() == ["first", "second"]


def test_notifications_and_answers_to_the_server_never_wait() -> None:
    rig = GatedRig(1)
    peer, conn = rig.client()
    rig.mux.from_client(peer, request("init", "initialize", capabilities={"roots": {}}))
    rig.upstream.clear()
    rig.mux.from_client(peer, request(1, "tools/call", name="busy"))
    rig.mux.from_client(peer, request(2, "tools/call", name="waits"))
    rig.mux.from_upstream({"jsonrpc": "2.0", "id": 77, "method": "roots/list", "params": {}})
    asked = conn.take()[-1]
    rig.mux.from_client(peer, protocol.result_response(asked["id"], {"roots": []}))
    rig.mux.from_client(peer, notification("notifications/roots/list_changed"))
    assert rig.upstream[1:] == [
        protocol.result_response(77, {"roots": []}),
        notification("notifications/roots/list_changed"),
    ]


def test_a_client_that_leaves_takes_its_waiting_requests_with_it() -> None:
    rig = GatedRig(1)
    (a, _), (b, b_conn) = rig.client(), rig.client()
    rig.mux.from_client(b, request(1, "tools/call", name="b-busy"))
    rig.mux.from_client(a, request(1, "tools/call", name="a-waits"))
    rig.mux.from_client(b, request(2, "tools/call", name="b-waits"))
    b_conn.close()
    assert rig.upstream[1]["method"] == "notifications/cancelled"  # b's request in flight, cancelled
    assert rig.names() == ["b-busy", "a-waits"]  # its place went to the next in line; b's waiting one is gone
    assert rig.gate.queued == 0


def test_when_the_server_goes_waiting_requests_are_answered_with_the_failure() -> None:
    rig = GatedRig(1)
    peer, conn = rig.client()
    rig.mux.from_client(peer, request(1, "tools/call", name="busy"))
    rig.mux.from_client(peer, request(2, "tools/call", name="waits"))
    rig.mux.detach(LOST)
    assert sorted(m["id"] for m in conn.take() if "error" in m) == [1, 2]


def test_no_limit_is_no_gate() -> None:
    sent: list[Message] = []
    send, seen = gated(sent.append, None, lambda _id: 0)
    for n in range(5):
        send(request(n, "tools/call", name="x"))
    seen(protocol.result_response(0, "done"))
    assert len(sent) == 5
