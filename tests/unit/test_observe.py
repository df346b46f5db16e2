"""observe() against a shim that exits, or starts, between its two looks (the record, then the kernel).

The kernel is played by a fake `lock_holder` that changes the world at the moment it is asked; the
record is a real file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpctl.control import observe as observing
from mcpctl.errors import ErrorType
from mcpctl.paths import Paths
from mcpctl.state import StateRecord, read_record, write_record
from mcpctl.states import ServerState


@pytest.fixture(autouse=True)
def env() -> None:
    return  # no CLI and no shim here: nothing for the suite's isolation fixture to do


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path)
    paths.ensure_server("a")
    return paths


def live(shim_pid: int, instance: str) -> StateRecord:
    return StateRecord(name="a", state=ServerState.READY, shim_pid=shim_pid, instance_id=instance)


def kernel(
    monkeypatch: pytest.MonkeyPatch, answers: list[int | None], on_first: StateRecord | None, paths: Paths
) -> None:
    """The lock's holder, one answer per question; before the first answer, `on_first` is written."""

    def lock_holder(_path: Path) -> int | None:
        if on_first is not None and len(answers) == original:
            write_record(paths.state_file("a"), on_first)
        return answers.pop(0)

    original = len(answers)
    monkeypatch.setattr(observing, "lock_holder", lock_holder)


def test_a_shim_that_exits_cleanly_between_the_two_looks_is_stopped_not_lost(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(paths.state_file("a"), live(7, "one"))
    final = StateRecord(name="a", state=ServerState.STOPPED, instance_id="one")
    kernel(monkeypatch, [None, None], final, paths)
    obs = observing.observe(paths, "a")
    assert obs.state == ServerState.STOPPED
    assert not obs.needs_repair
    assert obs.record.last_error is None


def test_a_shim_that_starts_between_the_two_looks_is_seen_with_its_lock(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(paths.state_file("a"), live(7, "one"))
    fresh = StateRecord(name="a", state=ServerState.STARTING, shim_pid=9, instance_id="two")
    kernel(monkeypatch, [None, 9], fresh, paths)
    monkeypatch.setattr(observing, "_ask_shim", lambda _paths, _name: None)
    obs = observing.observe(paths, "a")
    assert (obs.state, obs.shim_pid, obs.needs_repair) == (ServerState.STARTING, 9, False)


def test_a_live_record_with_no_holder_at_either_look_is_a_lost_shim(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(paths.state_file("a"), live(7, "one"))
    kernel(monkeypatch, [None, None], None, paths)
    obs = observing.observe(paths, "a")
    assert obs.state == ServerState.STOPPED
    assert obs.needs_repair
    assert obs.record.last_error is not None
    assert obs.record.last_error.type == ErrorType.SHIM_LOST


def test_a_repair_never_overwrites_a_record_that_changed_since_it_was_judged(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_record(paths.state_file("a"), live(7, "one"))
    kernel(monkeypatch, [None, None, None], None, paths)
    lost = observing.observe(paths, "a")
    final = StateRecord(name="a", state=ServerState.STOPPED, instance_id="one")
    write_record(paths.state_file("a"), final)  # the shim's own final word, written after the judgment
    assert not observing.put_right(paths, lost)
    assert read_record(paths.state_file("a")) == final


def test_a_shims_answer_is_taken_as_it_is_only_while_its_file_is_a_record_of_that_shim(paths: Paths) -> None:
    answer = live(7, "i1").to_json()
    write_record(paths.state_file("a"), live(7, "i0"))  # older, but this shim's own
    taken = observing.vouched(paths, "a", answer, holder=7)
    assert taken is not None
    assert (taken.state, taken.shim_pid, taken.record.instance_id, taken.warning) == (ServerState.READY, 7, "i1", None)
    assert observing.vouched(paths, "a", answer, holder=None) is None  # the kernel says nobody holds it
    assert observing.vouched(paths, "a", answer, holder=8) is None  # another process holds it
    assert observing.vouched(paths, "a", OSError("refused"), holder=7) is None
    assert observing.vouched(paths, "a", {"schema": 1}, holder=7) is None  # not a record
    stopped = StateRecord(name="a", state=ServerState.STOPPED, shim_pid=7).to_json()
    assert observing.vouched(paths, "a", stopped, holder=7) is None
    for on_disk in (b"garbage", b"", json.dumps(live(1, "i0").to_json()).encode()):  # damaged, or another's
        paths.state_file("a").write_bytes(on_disk)
        assert observing.vouched(paths, "a", answer, holder=7) is None
    paths.state_file("a").unlink()
    assert observing.vouched(paths, "a", answer, holder=7) is None
