"""A person's restart of a live shim (`mcpctl/restart`): the server is replaced in place and the clients stay.

Driven like test_shim_machine: a fake run, a fake clock, fake client connections; the record, the events
and what each client was sent are what a reader would see.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest

from mcpctl import protocol
from mcpctl.contract import Control
from mcpctl.shim import machine
from mcpctl.shim.loop import Finished
from mcpctl.shim.machine import Action, Happening
from mcpctl.shim.mux import Peer
from mcpctl.shim.peer_state import PeerState
from mcpctl.shim.renewal import list_changes
from mcpctl.shim.run import Ready
from mcpctl.states import ServerState
from tests.unit.mux_fakes import FakeConnection, request
from tests.unit.test_shim_machine import HANDSHAKE, World, spec_of, world  # noqa: F401 - world is a fixture

CAPABLE = {**HANDSHAKE, "capabilities": {"tools": {}, "prompts": {}}}
NOTICES = ["notifications/tools/list_changed", "notifications/prompts/list_changed"]


@pytest.mark.parametrize("state", list(ServerState))
def test_a_restart_is_taken_in_every_state_with_a_run_or_a_backoff(state: ServerState) -> None:
    taken = {ServerState.STARTING, ServerState.READY, ServerState.UNHEALTHY, ServerState.BACKOFF}
    expected = Action.RESTART_RUN if state in taken else None
    assert machine.action(state, Happening.RESTART_REQUESTED) == expected


def client(w: World) -> tuple[Peer, FakeConnection]:
    mux = w.shim.mux
    conn = FakeConnection(len(mux.peers) + 1, mux.hangup)
    return mux.add(conn), conn


def say(w: World, conn: FakeConnection, message: dict[str, Any]) -> None:
    w.shim.session._from_client(conn, message)  # type: ignore[arg-type]


def restart(w: World, **settings: Any) -> dict[str, Any]:
    return w.control(Control.RESTART, {"spec": asdict(spec_of(config_hash="h2", **settings))})


def test_a_restart_replaces_the_server_and_keeps_its_clients(world: Callable[..., World]) -> None:  # noqa: F811
    w = world()
    w.runs.last.verdict = Ready(CAPABLE)
    w.shim.step()
    old = w.runs.last
    _peer, conn = client(w)
    say(w, conn, request(1, "initialize", protocolVersion="2025-11-25"))
    say(w, conn, request(2, "resources/subscribe", uri="file:///watched"))
    [subscribe] = [m for m in old.sent if m.get("method") == "resources/subscribe"]
    w.shim.mux.from_upstream(protocol.result_response(subscribe["id"], {}))
    say(w, conn, request(3, "tools/call", name="slow"))
    conn.take()
    assert restart(w, env={"FLAVOUR": "mint"})["result"] == {"attempt": 2}
    assert w.record.state == ServerState.READY  # the answer comes first; the loop acts at its next step
    w.shim.step()
    assert old.ended == [True]  # politely: stdin closed, then stop_timeout
    [lost] = conn.take()
    assert (lost["id"], lost["error"]["data"]["type"], lost["error"]["data"]["retryable"]) == (
        3,
        "connection_lost",
        True,
    )
    assert "being restarted" in lost["error"]["message"]
    assert not conn.closed
    assert w.runs.last is not old
    assert w.shim.spec.env == {"FLAVOUR": "mint"}
    record = w.record
    assert (record.state, record.attempt, record.restarts, record.pid) == ("starting", 2, 0, w.runs.last.pid)
    assert w.kinds()[-2:] == ["restart", "started"]
    assert (w.events()[-2]["config_hash"], record.config_hash) == ("h2", "h2")
    say(w, conn, request(4, "tools/list"))  # waits for the new session
    w.runs.last.verdict = Ready(CAPABLE)
    w.shim.step()
    sent = [m.get("method") for m in w.runs.last.sent]
    assert sent.index("resources/subscribe") < sent.index("tools/list")  # re-subscribed before the waiting
    assert [m["method"] for m in conn.take()] == NOTICES


def test_after_a_restart_every_client_is_told_to_fetch_the_lists_again(world: Callable[..., World]) -> None:  # noqa: F811
    w = world()
    w.ready()
    conns = [client(w)[1] for _ in range(2)]
    restart(w)
    w.shim.step()
    w.runs.last.verdict = Ready(CAPABLE)
    w.shim.step()
    for conn in conns:
        assert [m["method"] for m in conn.take()] == NOTICES


def test_a_restart_in_a_backoff_starts_now_as_a_persons_start(world: Callable[..., World]) -> None:  # noqa: F811
    w = world()
    w.fail_start()
    assert w.record.state == ServerState.BACKOFF
    assert restart(w)["result"] == {"attempt": 2}
    w.shim.step()  # no waiting for the delay
    assert (w.record.state, w.record.attempt) == ("starting", 2)
    assert w.runs.made[0].ended == [True]  # ended once, by the failed start: not again
    w.ready()
    assert w.record.consecutive_failures == 0


def test_a_stopping_shim_refuses_a_restart(world: Callable[..., World]) -> None:  # noqa: F811
    w = world()
    w.ready()
    w.shim.stop()
    answer = restart(w)
    assert "stopping" in answer["error"]["message"]
    assert len(w.runs.made) == 1


def test_a_restart_asked_while_the_old_tree_ends_joins_the_one_under_way(world: Callable[..., World]) -> None:  # noqa: F811
    w = world()
    w.ready()
    assert restart(w)["result"] == {"attempt": 2}
    joined: list[dict[str, Any]] = []
    w.runs.last.while_ending = lambda: joined.append(restart(w, env={"FLAVOUR": "mint"}))
    w.shim.step()
    assert joined == [{"jsonrpc": "2.0", "id": 7, "result": {"attempt": 2}}]  # the same attempt: one restart
    assert (len(w.runs.made), w.record.state, w.record.attempt) == (2, "starting", 2)
    assert w.shim.spec.env == {"FLAVOUR": "mint"}  # the run started after both takes the spec asked last
    assert w.kinds().count("restart") == 1
    w.ready()


@pytest.mark.parametrize("how", ["request", "signal"])
def test_a_stop_asked_while_the_old_tree_ends_wins(world: Callable[..., World], how: str) -> None:  # noqa: F811
    w = world()
    w.ready()
    restart(w)
    during: list[tuple[str, bool]] = []  # the state a reader finds, and whether a restart was refused

    def stop() -> None:
        if how == "request":
            w.shim.stop()
        else:
            w.shim._on_stop_signal()  # what `mcpctl stop` sends on Linux
        w.shim._meanwhile(0.0)
        during.append((w.record.state, "error" in restart(w)))

    w.runs.last.while_ending = stop
    w.shim.step()
    assert during == [("stopping", True)]  # no restart joins a stop
    assert len(w.runs.made) == 1  # nothing spawned after the stop
    assert (w.record.state, w.shim.finished) == ("stopped", Finished(0))
    assert "restart" not in w.kinds()
    assert w.kinds()[-1] == "stopped"


def test_a_restart_for_another_server_or_without_a_spec_is_refused(world: Callable[..., World]) -> None:  # noqa: F811
    w = world()
    w.ready()
    assert w.control(Control.RESTART, {"spec": asdict(spec_of(name="other"))})["error"]["code"] == -32602
    assert w.control(Control.RESTART, {})["error"]["code"] == -32602
    w.shim.step()
    assert (w.record.state, len(w.runs.made)) == ("ready", 1)


def test_a_new_session_is_given_again_what_the_clients_still_connected_hold() -> None:
    state = PeerState()
    assert state.route(1, request(1, "resources/subscribe", uri="a")) is not None
    assert state.route(1, request(2, "resources/subscribe", uri="b")) is not None
    assert state.route(2, request(1, "resources/subscribe", uri="b")) is None  # the server has it already
    assert state.route(2, request(2, "logging/setLevel", level="info")) is not None
    state.leave(1, itertools.count(100))
    renewal = state.renewal(itertools.count(7))
    assert [(m["id"], m["method"], m["params"]) for m in renewal] == [
        (7, "resources/subscribe", {"uri": "b"}),
        (8, "logging/setLevel", {"level": "info"}),
    ]


def test_list_changes_follow_the_declared_capabilities() -> None:
    methods = [m["method"] for m in list_changes({"capabilities": {"resources": {}, "logging": {}}})]
    assert methods == ["notifications/tools/list_changed", "notifications/resources/list_changed"]
