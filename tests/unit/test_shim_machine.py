"""The shim's state machine, driven step by step with a fake run and a fake clock: no process, no sleep.

Each test reads what a person or the CLI would read: the record on disk, events.jsonl and the report
pipe. The real-process behaviour is in tests/test_lifecycle.py, test_failures.py and test_health.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from mcpctl.clock import Clock
from mcpctl.contract import Control, Spec
from mcpctl.errors import ErrorType, Failure
from mcpctl.events import read_events
from mcpctl.paths import Paths
from mcpctl.shim import control_requests, machine
from mcpctl.shim.ledger import ReportPipe
from mcpctl.shim.loop import Finished, Shim
from mcpctl.shim.machine import Action, Happening
from mcpctl.shim.run import Ready
from mcpctl.state import StateRecord, read_record
from mcpctl.states import ServerState
from tests.unit.fakes import FakeClock

NAME = "demo"
HANDSHAKE = {"protocolVersion": "2025-11-25", "serverInfo": {"name": "fake", "version": "1.0"}, "capabilities": {}}


class FakeRun:
    """A run whose verdict and exit the test decides."""

    def __init__(self, pid: int, spawn_failure: Failure | None) -> None:
        self.fake_pid = pid
        self.spawn_failure = spawn_failure
        self.exit_code: int | None = None
        self.log_from = 0
        self.on_message: Callable[[dict[str, Any]], None] | None = None
        self.verdict: Ready | Failure | None = None
        self.session_lost: Failure | None = None  # its stdout closed while it lives
        self.sent: list[dict[str, Any]] = []
        self.ended: list[bool] = []  # graceful, for each end_tree
        self.while_ending: Callable[[], object] | None = None  # what happens while its tree ends

    @property
    def pid(self) -> int | None:
        return self.fake_pid

    def spawn(self) -> Failure | None:
        return self.spawn_failure

    def create_time(self) -> float | None:
        return 123.0

    def drain(self) -> None:
        pass

    def judge(self) -> Ready | Failure | None:
        return self.verdict

    def lost(self) -> Failure | None:
        return self.session_lost

    def next_wakeup(self) -> float:
        return float("inf")

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def exited(self, status: int) -> None:
        self.exit_code = os.waitstatus_to_exitcode(status)

    def end_tree(self, graceful: bool, meanwhile: Callable[[float], None]) -> None:
        self.ended.append(graceful)
        if self.exit_code is None:
            self.exit_code = -15  # ended by SIGTERM
        if self.while_ending is not None:
            self.while_ending()
        meanwhile(0.0)


@dataclass
class Runs:
    """The run factory: every run the shim made, newest last."""

    made: list[FakeRun] = field(default_factory=list)
    spawn_failures: list[Failure] = field(default_factory=list)  # the next spawns fail with these

    def __call__(
        self, spec: Spec, instance_id: str, selector: Any, redact: Any, log_path: str, clock: Clock
    ) -> FakeRun:
        failure = self.spawn_failures.pop(0) if self.spawn_failures else None
        self.made.append(FakeRun(4000 + len(self.made), failure))
        return self.made[-1]

    @property
    def last(self) -> FakeRun:
        return self.made[-1]


@dataclass
class World:
    shim: Shim
    runs: Runs
    clock: FakeClock
    paths: Paths
    report_fd: int

    @property
    def record(self) -> StateRecord:
        """The record as a reader finds it on disk."""
        record = read_record(self.paths.state_file(NAME))
        assert record is not None
        return record

    def events(self) -> list[dict[str, Any]]:
        return read_events(self.paths.events_file(NAME))

    def kinds(self) -> list[str]:
        return [event["event"] for event in self.events()]

    def reported(self) -> list[dict[str, Any]]:
        """What the CLI that started the shim read on its pipe."""
        try:
            raw = os.read(self.report_fd, 65536)
        except BlockingIOError:
            return []
        return [json.loads(line) for line in raw.splitlines()]

    def ready(self) -> None:
        self.runs.last.verdict = Ready(HANDSHAKE)
        self.shim.step()
        assert self.record.state == ServerState.READY

    def fail_start(self) -> None:
        self.runs.last.verdict = Failure.of(ErrorType.EXITED_DURING_STARTUP, name=NAME, exit="exit code 1", log="x")
        self.shim.step()

    def retry(self) -> None:
        """Let the backoff delay pass (the event rounds it to the millisecond)."""
        assert self.record.state == ServerState.BACKOFF
        self.after(self.events()[-1]["delay_s"] + 0.001)
        assert self.record.state == ServerState.STARTING

    def after(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.shim.step()

    def control(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request = {"jsonrpc": "2.0", "id": 7, "method": method, **({"params": params} if params else {})}
        return control_requests.answer(self.shim, request)


def spec_of(**settings: Any) -> Spec:
    base = Spec(name=NAME, command="fake-server", args=[], env={}, cwd=None, url=None, startup_timeout=5.0,
                stop_timeout=1.0, config_hash="h1", backoff_base=1.0, backoff_max=8.0, max_failures=5)  # fmt: skip
    return replace(base, **settings)


@pytest.fixture
def world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., World]]:
    opened: list[tuple[Shim, int, int]] = []

    def make(**settings: Any) -> World:
        paths = Paths(tmp_path / "home")
        paths.ensure_server(NAME)
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        runs, clock = Runs(), FakeClock()
        reports = ReportPipe(paths.log_file(NAME), fd=write_fd)
        shim = Shim(paths, spec_of(**settings), clock=clock, make_run=runs, reports=reports, reaped=lambda: ())
        opened.append((shim, read_fd, write_fd))
        shim.start()
        return World(shim, runs, clock, paths, read_fd)

    yield make
    for shim, read_fd, write_fd in opened:
        shim.selector.close()
        os.close(read_fd)
        os.close(write_fd)


def test_a_start_is_starting_until_judged_ready(world: Callable[..., World]) -> None:
    w = world()
    assert (w.record.state, w.record.attempt, w.record.pid, w.record.pid_create_time) == ("starting", 1, 4000, 123.0)
    assert w.kinds() == ["started"]
    w.shim.step()  # no verdict yet
    assert w.record.state == ServerState.STARTING
    w.clock.advance(0.5)
    w.ready()
    assert w.record.ready_at == w.clock.wall
    assert w.record.server_info == {
        "name": "fake",
        "version": "1.0",
        "protocol_version": "2025-11-25",
        "protocol_era": "legacy",
        "era_config_hash": None,
    }
    assert w.kinds() == ["started", "ready"]
    assert w.events()[-1]["elapsed_s"] == 0.5
    [report] = w.reported()
    assert (report["event"], report["record"]["state"], report["stderr_tail"]) == ("ready", "ready", [])


def test_a_failed_start_backs_off_exponentially_then_retries_when_the_delay_is_over(
    world: Callable[..., World],
) -> None:
    w = world(backoff_base=1.0, backoff_max=8.0, max_failures=10)
    for failures, delay in enumerate([1.0, 2.0, 4.0, 8.0, 8.0], start=1):
        w.fail_start()
        record, event = w.record, w.events()[-1]
        assert (record.state, record.consecutive_failures, record.pid) == ("backoff", failures, None)
        assert event["event"] == "backoff"
        assert delay <= event["delay_s"] <= delay * 1.1  # base·2^(n-1), capped, plus at most 10 % jitter
        assert record.cooldown_until == pytest.approx(w.clock.wall + event["delay_s"])
        w.after(event["delay_s"] - 0.01)
        assert w.record.state == ServerState.BACKOFF
        w.after(0.02)
        assert (w.record.state, w.record.attempt, w.record.restarts) == ("starting", failures + 1, failures)
        assert w.kinds()[-1] == "restarted"
    assert [r["event"] for r in w.reported()] == ["failed"]  # the CLI hears of the first outcome only


def test_a_crash_after_ready_backs_off_and_the_restart_is_counted(world: Callable[..., World]) -> None:
    w = world()
    w.ready()
    first = w.runs.last
    w.clock.advance(150.0)
    first.exit_code = 1
    w.shim.step()
    record = w.record
    assert (record.state, record.last_exit_code, record.consecutive_failures, record.total_failures) == (
        "backoff", 1, 1, 1)  # fmt: skip
    assert record.last_error is not None
    assert record.last_error.type == ErrorType.CRASHED
    assert record.last_error.message == "demo exited unexpectedly (exit code 1) after 2m"
    exited = [e for e in w.events() if e["event"] == "exited"][-1]
    assert (exited["code"], exited["error"]) == (1, "crashed")
    w.after(1.2)
    assert len(w.runs.made) == 2
    assert w.runs.last is not first
    w.ready()
    assert (w.record.restarts, w.record.attempt, w.record.consecutive_failures) == (1, 2, 1)  # kept: not manual
    assert w.kinds() == ["started", "ready", "exited", "backoff", "restarted", "ready"]


def test_a_run_whose_session_is_lost_ends_as_a_crash_would(world: Callable[..., World]) -> None:
    """A run that says its session is over (a stdio server closed its stdout) while its process lives is
    ended, counted and restarted by policy, as a crash is: not left ready until three pings fail."""
    w = world()
    w.ready()
    first = w.runs.last
    first.session_lost = Failure(ErrorType.CRASHED, "demo closed its stdout after it was ready but kept running")
    w.shim.step()
    record = w.record
    assert (record.state, record.consecutive_failures, first.ended) == ("backoff", 1, [True])
    assert record.last_error is not None
    assert record.last_error.message == "demo closed its stdout after it was ready but kept running"
    w.after(1.2)
    assert len(w.runs.made) == 2
    assert w.kinds() == ["started", "ready", "exited", "backoff", "restarted"]


def test_the_crash_loop_limit_ends_in_failed_with_a_cooldown(world: Callable[..., World]) -> None:
    w = world(max_failures=3, cooldown_base=60.0, cooldown_max=3600.0)
    for _ in range(2):
        w.fail_start()
        w.retry()
    w.fail_start()
    record = w.record
    assert record.state == ServerState.FAILED
    assert record.last_error is not None
    assert record.last_error.type == ErrorType.CRASH_LOOP
    assert record.cooldown_until == pytest.approx(w.clock.wall + 60.0)  # the first cooldown is cooldown_base
    assert record.cooldown_until_mono == pytest.approx(w.clock.mono + 60.0)
    assert w.shim.finished == Finished(0)
    assert w.kinds()[-1] == "failed"
    assert w.events()[-1]["error"]["type"] == "crash_loop"


def test_a_failure_that_retrying_cannot_fix_fails_at_once(world: Callable[..., World]) -> None:
    w = world()  # the first run already spawned; the failure comes with the second spawn
    w.runs.spawn_failures.append(Failure.of(ErrorType.COMMAND_NOT_FOUND, name=NAME, command="nope"))
    w.fail_start()
    w.after(1.2)
    assert w.record.state == ServerState.FAILED
    assert w.record.last_error is not None
    assert w.record.last_error.type == ErrorType.COMMAND_NOT_FOUND
    assert w.record.cooldown_until is None
    assert w.shim.finished is not None


@pytest.mark.parametrize(("policy", "after"), [("never", "stopped"), ("on-failure", "stopped"), ("always", "backoff")])
def test_a_clean_exit_follows_the_restart_policy(world: Callable[..., World], policy: str, after: str) -> None:
    w = world(restart=policy, backoff_base=2.0)
    w.ready()
    w.runs.last.exit_code = 0
    w.shim.step()
    record = w.record
    assert (record.state, record.last_exit_code, record.consecutive_failures, record.total_failures) == (
        after, 0, 0, 0)  # fmt: skip
    assert (w.shim.finished is not None) == (after == "stopped")
    if after == "backoff":
        assert w.events()[-1]["delay_s"] == 2.0  # no failure: the base delay, no growth
        w.after(2.0)
        assert (w.record.state, w.record.restarts) == ("starting", 1)


def test_reset_after_resets_the_consecutive_failures(world: Callable[..., World]) -> None:
    w = world(reset_after=10.0)
    w.fail_start()
    w.retry()
    w.ready()
    assert w.record.consecutive_failures == 1
    w.after(9.9)
    assert w.record.consecutive_failures == 1
    w.after(0.2)
    assert (w.record.consecutive_failures, w.record.total_failures) == (0, 1)
    assert w.events()[-1]["event"] == "reset"
    assert w.events()[-1]["after_s"] == 10.0


def _ping_ids(run: FakeRun) -> list[str]:
    return [m["id"] for m in run.sent if m.get("method") == "ping"]


def test_failed_pings_make_it_unhealthy_and_an_answer_makes_it_ready_again(world: Callable[..., World]) -> None:
    w = world(health_interval=5.0, health_timeout=1.0, unhealthy_after=2, restart_on_unhealthy=False)
    w.ready()
    for failures in (1, 2):
        w.after(5.0 if failures == 1 else 4.0)  # the ping goes out
        assert len(_ping_ids(w.runs.last)) == failures
        w.after(1.0)  # and is not answered in time
        assert w.record.health is not None
        assert w.record.health["consecutive_failures"] == failures
    assert w.record.state == ServerState.UNHEALTHY
    unhealthy = [e for e in w.events() if e["event"] == "unhealthy"]
    assert len(unhealthy) == 1
    assert unhealthy[0]["consecutive_failures"] == 2
    w.after(4.0)
    on_message = w.runs.last.on_message
    assert on_message is not None
    on_message({"jsonrpc": "2.0", "id": _ping_ids(w.runs.last)[-1], "result": {}})
    w.shim.step()
    assert w.record.state == ServerState.READY
    assert w.record.health is not None
    assert w.record.health["ok"]
    assert w.kinds()[-1] == "healthy"
    assert len(w.runs.made) == 1  # the same run all along


def test_unhealthy_restarts_the_server_when_configured(world: Callable[..., World]) -> None:
    w = world(health_interval=5.0, health_timeout=1.0, unhealthy_after=1, restart_on_unhealthy=True)
    w.ready()
    w.after(5.0)
    w.after(1.0)
    assert w.record.state == ServerState.BACKOFF
    assert w.record.last_error is not None
    assert w.record.last_error.type == ErrorType.UNHEALTHY
    assert w.runs.made[0].ended == [True]
    assert w.kinds()[-3:] == ["unhealthy", "exited", "backoff"]


def _drive_to(w: World, state: ServerState) -> None:
    if state in (ServerState.READY, ServerState.UNHEALTHY):
        w.ready()
    if state == ServerState.UNHEALTHY:
        w.shim.step()
        w.after(w.shim.spec.health_interval)
        w.after(w.shim.spec.health_timeout)
    if state == ServerState.BACKOFF:
        w.fail_start()
    assert w.record.state == state


@pytest.mark.parametrize("state", [ServerState.STARTING, ServerState.READY, ServerState.UNHEALTHY, ServerState.BACKOFF])
def test_a_stop_request_in_any_state_ends_stopped(world: Callable[..., World], state: ServerState) -> None:
    w = world(health_interval=5.0, health_timeout=1.0, unhealthy_after=1, restart_on_unhealthy=False)
    _drive_to(w, state)
    assert w.control(Control.STOP)["result"] == {"stopping": True}
    assert w.record.state == (ServerState.BACKOFF if state == ServerState.BACKOFF else ServerState.STOPPING)
    w.shim.step()
    record = w.record
    assert (record.state, record.pid, record.stopped_at) == ("stopped", None, w.clock.wall)
    assert w.shim.finished == Finished(0)
    assert w.kinds()[-1] == "stopped"
    assert w.runs.last.ended == [True]  # its tree ended once, gracefully (in backoff: when its start failed)


def test_a_stop_signal_only_sets_a_flag_and_the_next_step_stops(world: Callable[..., World]) -> None:
    w = world()
    w.ready()
    w.shim._on_stop_signal()
    assert w.record.state == ServerState.READY  # nothing is written from a signal handler
    w.shim.step()
    assert w.record.state == ServerState.STOPPED


def test_retry_during_a_backoff_starts_at_once_as_a_persons_start(world: Callable[..., World]) -> None:
    w = world(backoff_base=30.0, backoff_max=60.0)
    w.fail_start()
    assert w.record.state == ServerState.BACKOFF
    assert w.control(Control.RETRY)["result"] == {"attempt": 2}
    w.shim.step()
    assert (w.record.state, w.record.attempt, w.record.restarts) == ("starting", 2, 0)
    assert w.kinds()[-1] == "started"  # a person's start, not a restart
    w.ready()
    assert w.record.consecutive_failures == 0  # a person's successful start resets the count
    assert w.control(Control.RETRY)["result"] == {"attempt": 2}  # not in backoff: nothing to do


def test_update_takes_new_settings_without_a_restart(world: Callable[..., World]) -> None:
    w = world(health_interval=5.0)
    w.ready()
    settings = {"health_interval": 7.0, "max_failures": 9, "command": "ignored"}
    answer = w.control(Control.UPDATE, {"settings": settings, "config_hash": "h2"})
    assert answer["result"] == {"config_hash": "h2", "updated": ["health_interval", "max_failures"]}
    assert (w.record.state, w.record.config_hash, w.record.pid) == ("ready", "h2", 4000)
    assert w.events()[-1]["event"] == "updated"
    assert w.events()[-1]["fields"] == ["health_interval", "max_failures"]
    assert (w.shim.spec.max_failures, w.shim.spec.command) == (9, "fake-server")
    monitor = w.shim.watch.monitor
    assert monitor is not None
    assert monitor.pinger is not None
    assert monitor.pinger.interval == 7.0
    assert len(w.runs.made) == 1


def test_an_unusable_update_changes_nothing(world: Callable[..., World]) -> None:
    w = world()
    w.ready()
    answer = w.control(Control.UPDATE, {"settings": {"restart": "sometimes"}, "config_hash": "h2"})
    assert answer["error"]["code"] == -32602
    assert (w.record.config_hash, w.shim.spec.restart) == ("h1", "on-failure")
    assert "updated" not in w.kinds()


def test_status_answers_the_record_and_rewrites_a_damaged_file_when_asked(world: Callable[..., World]) -> None:
    w = world()
    w.paths.state_file(NAME).write_text("{damaged")
    answer = w.control(Control.STATUS)
    assert answer["result"]["state"] == "starting"
    assert w.paths.state_file(NAME).read_text() == "{damaged"  # a plain status writes nothing
    answer = w.control(Control.STATUS, {"save": True})
    assert answer["result"]["state"] == "starting"
    assert w.record.state == ServerState.STARTING


def test_every_state_honours_a_stop_and_nothing_else_is_implied() -> None:
    assert all(machine.action(state, Happening.STOP_REQUESTED) == Action.FINISH for state in ServerState)
    assert machine.action(ServerState.BACKOFF, Happening.RUN_EXITED) is None
    assert machine.action(ServerState.STARTING, Happening.PING_OK) is None
    assert machine.ping_happening(ok=False, failures_in_a_row=2, unhealthy_after=3) == Happening.PING_FAILED
    assert machine.ping_happening(ok=False, failures_in_a_row=3, unhealthy_after=3) == Happening.PINGS_FAILED
