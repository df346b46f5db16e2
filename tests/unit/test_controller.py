"""The controller's start and stop decisions, driven by a fake clock, fake shims and scripted observations.

No process is spawned and nothing sleeps: the fake clock's sleep moves it on, and what the controller
observes is a timeline of observations per server, read at the fake clock's time.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from mcpctl import process
from mcpctl.config.environment import Resolution
from mcpctl.config.model import Config, ServerConfig
from mcpctl.contract import Control, Report
from mcpctl.control.controller import Controller
from mcpctl.control.launch import Launch
from mcpctl.control.observe import Observation
from mcpctl.control.start import Situation, classify
from mcpctl.errors import ErrorType, Failure
from mcpctl.paths import Paths
from mcpctl.state import StateRecord
from mcpctl.states import ServerState, StartOutcome, StopOutcome
from tests.unit.fakes import FakeClock


@pytest.fixture(autouse=True)
def env() -> None:
    # Stands in for the suite's isolation fixture: these tests start no CLI and no shim, so there is
    # nothing to isolate and no `mcpctl stop --all` to run after them.
    return


def seen(name: str, state: ServerState, shim_pid: int | None = None, **record: Any) -> Observation:
    return Observation(name, state, StateRecord(name=name, state=state, shim_pid=shim_pid, **record), shim_pid, None)


@dataclass
class World:
    """What observing a server shows, as a timeline of (from when, observation) per server."""

    clock: FakeClock
    timelines: dict[str, list[tuple[float, Observation]]] = field(default_factory=dict)

    def then(self, obs: Observation, after: float = 0.0) -> None:
        self.timelines.setdefault(obs.name, []).append((self.clock.mono + after, obs))

    def observe(self, paths: Paths, name: str) -> Observation:
        return self.now(name)

    def now(self, name: str) -> Observation:
        timeline = sorted(self.timelines.get(name, []), key=lambda entry: entry[0])  # stable: ties keep order
        current = [obs for since, obs in timeline if since <= self.clock.mono]
        return current[-1] if current else seen(name, ServerState.STOPPED)


@dataclass
class Settled:
    """Answers all in at once, as FakeShims gives them."""

    results: dict[str, Any]

    @property
    def sent(self) -> list[str]:
        return [name for name, answer in self.results.items() if not isinstance(answer, Exception)]

    def __enter__(self) -> Settled:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def answered(self) -> dict[str, Any]:
        return self.results

    def wait(self, names: Iterable[str]) -> dict[str, Any]:
        return {name: self.results[name] for name in names}


@dataclass
class FakeShims:
    """Launches that report what they are scripted to, control calls that answer from a table."""

    world: World
    scripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # report events per server
    becomes: dict[str, Observation] = field(default_factory=dict)  # what a server shows once spawned
    answers: dict[str, Any] = field(default_factory=dict)  # control method -> answer
    leftovers: dict[str, int] = field(default_factory=dict)
    spawned: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def prepare(self, server: ServerConfig, resolved: Resolution, alerts: dict[str, Any], config_hash: str) -> Launch:
        return Launch(server, -1)

    def spawn(self, launches: list[Launch], meanwhile: Callable[[], None] | None = None) -> None:
        if meanwhile is not None:
            meanwhile()
        for launch in launches:
            self.spawned.append(launch.server.name)
            if launch.server.name in self.becomes:
                self.world.then(self.becomes[launch.server.name])

    def wait(self, launches: list[Launch], until: set[str], deadline: float) -> None:
        for launch in launches:
            launch.events = launch.events or []
            script = self.scripts.get(launch.server.name, [])
            while script:
                event = script.pop(0)
                launch.events.append(event)
                if event["event"] in until:
                    break

    def call(self, name: str, method: str, params: dict[str, Any] | None = None) -> Any:
        self.calls.append((name, method))
        if method not in self.answers:
            raise OSError("no shim answers")
        return self.answers[method]

    def call_all(self, names: list[str], method: str) -> list[Any]:
        answers: list[Any] = []
        for name in names:
            try:
                answers.append(self.call(name, method))
            except OSError as exc:
                answers.append(exc)
        return answers

    def ask_all(self, names: list[str], method: str) -> Settled:
        return Settled(dict(zip(names, self.call_all(names, method), strict=True)))

    def ask_to_stop(self, shims: list[tuple[str, int]]) -> list[bool]:
        answers = self.call_all([name for name, _ in shims], Control.STOP)
        return [not isinstance(answer, Exception) for answer in answers]

    def holder(self, name: str) -> int | None:
        return self.world.now(name).shim_pid

    def frozen(self, pid: int) -> bool:
        return False

    def await_exit(self, pid: int, timeout: float) -> None:
        self.world.clock.sleep(timeout)

    def end_leftovers(self, record: StateRecord) -> int:
        return self.leftovers.get(record.name, 0)

    def signal(self, shim_pid: int, sig: int) -> None:
        self.calls.append((str(shim_pid), f"signal {sig}"))


def _besides_status(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The control calls that act: a wait asks the shim for its record (`mcpctl/status`) as it goes."""
    return [call for call in calls if call[1] != Control.STATUS]


@dataclass
class Rig:
    clock: FakeClock
    world: World
    shims: FakeShims
    controller: Controller

    def start(self, server: ServerConfig, wait: bool = True, force: bool = False) -> Any:
        (result,) = self.controller.start([server], wait=wait, force=force)
        return result


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    clock = FakeClock()
    world = World(clock)
    shims = FakeShims(world)
    config = Config(path=tmp_path / "mcpctl.toml", servers={"a": SERVER})
    controller = Controller(Paths(tmp_path / "home"), config, clock=clock, launcher=shims, observer=world.observe)
    return Rig(clock, world, shims, controller)


SERVER = ServerConfig(name="a", command="true", startup_timeout=1.0, stop_timeout=1.0)
# How long a start waits on someone else's shim: startup + stop + stdin grace (2) + slack (5).
JOIN_BUDGET = 1.0 + 1.0 + 2.0 + 5.0


def locked(pid: int) -> dict[str, Any]:
    return {"event": Report.LOCKED, "pid": pid}


def ready(pid: int) -> dict[str, Any]:
    return {"event": Report.READY, "record": {"state": ServerState.READY, "shim_pid": pid}}


def launches_ready(rig: Rig, pid: int = 8) -> None:
    rig.shims.scripts["a"] = [locked(pid), ready(pid)]
    rig.shims.becomes["a"] = seen("a", ServerState.READY, pid)


def cooling(state: ServerState, seconds: float, clock: FakeClock, **record: Any) -> Observation:
    return seen(
        "a",
        state,
        cooldown_until_mono=clock.mono + seconds,
        boot_time=process.boot_time(),
        consecutive_failures=5,
        **record,
    )


def test_classify_names_each_situation() -> None:
    assert classify(seen("a", ServerState.STOPPED), False, 0.0) == Situation.FREE
    assert classify(seen("a", ServerState.READY, 7), False, 0.0) == Situation.LIVE
    assert classify(seen("a", ServerState.STOPPING, 7), False, 0.0) == Situation.STOPPING
    assert classify(seen("a", ServerState.BACKOFF, 7), False, 0.0) == Situation.IN_BACKOFF


def test_a_free_server_is_launched(rig: Rig) -> None:
    launches_ready(rig)
    result = rig.start(SERVER)
    assert result.outcome == StartOutcome.STARTED
    assert result.ok
    assert rig.shims.spawned == ["a"]
    assert result.observation.shim_pid == 8


def test_a_ready_server_is_already_running_and_nothing_is_launched(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.READY, 7))
    result = rig.start(SERVER)
    assert result.outcome == StartOutcome.ALREADY_RUNNING
    assert rig.shims.spawned == []


def test_a_cooldown_skips_the_start_unless_forced(rig: Rig) -> None:
    rig.world.then(cooling(ServerState.FAILED, 120.0, rig.clock))
    skipped = rig.start(SERVER)
    assert skipped.outcome == StartOutcome.SKIPPED
    assert not skipped.ok
    assert skipped.error is not None
    assert skipped.error.type == ErrorType.COOLDOWN
    assert "next try in 120s" in skipped.error.message
    assert rig.shims.spawned == []
    launches_ready(rig)
    assert rig.start(SERVER, force=True).outcome == StartOutcome.STARTED
    assert rig.shims.spawned == ["a"]


def test_force_during_backoff_asks_the_shim_to_retry_now(rig: Rig) -> None:
    backoff = cooling(ServerState.BACKOFF, 5.0, rig.clock, attempt=1)
    rig.world.then(replace(backoff, shim_pid=7))
    rig.shims.answers[Control.RETRY] = {"attempt": 2}
    rig.world.then(seen("a", ServerState.STARTING, 7, attempt=2), after=0.1)
    rig.world.then(seen("a", ServerState.READY, 7, attempt=2), after=0.5)
    result = rig.start(SERVER, force=True)
    assert result.outcome == StartOutcome.STARTED
    assert _besides_status(rig.shims.calls) == [("a", Control.RETRY)]  # the wait asks it how it goes
    assert rig.shims.spawned == []
    assert result.elapsed_s == pytest.approx(0.5, abs=0.03)


def test_joining_a_starting_shim_that_becomes_ready_is_already_running(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.STARTING, 7))
    rig.world.then(seen("a", ServerState.READY, 7), after=1.0)
    result = rig.start(SERVER)
    assert result.outcome == StartOutcome.ALREADY_RUNNING
    assert result.observation.state == ServerState.READY
    assert result.elapsed_s == pytest.approx(1.0, abs=0.03)
    assert rig.shims.spawned == []


@pytest.mark.parametrize(("then", "outcome"), [(ServerState.FAILED, "failed"), (ServerState.READY, "already_running")])
def test_a_failed_launch_while_another_shim_starts_has_that_starts_outcome(
    rig: Rig, then: ServerState, outcome: str
) -> None:
    # Ours failed, and meanwhile another command's shim took the lock and is starting: not "already
    # running" (it may fail as ours did), but whatever that start comes to.
    rig.shims.scripts["a"] = [locked(8), {"event": Report.FAILED, "record": {"state": ServerState.FAILED}}]
    rig.shims.becomes["a"] = seen("a", ServerState.STARTING, 9)
    rig.world.then(seen("a", then, 9 if then == ServerState.READY else None), after=8.0)  # past our shim's exit
    result = rig.start(SERVER)
    assert result.outcome == outcome
    assert result.elapsed_s == pytest.approx(8.0, abs=0.1)


def test_joining_a_stopping_shim_waits_for_it_then_launches(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.STOPPING, 7))
    rig.world.then(seen("a", ServerState.STOPPED), after=0.5)
    launches_ready(rig)
    result = rig.start(SERVER)
    assert result.outcome == StartOutcome.STARTED
    assert rig.shims.spawned == ["a"]
    assert result.elapsed_s == pytest.approx(0.5, abs=0.03)


def test_force_is_kept_after_joining_a_stopping_shim(rig: Rig) -> None:
    # The shim we joined stops and leaves a cooldown behind: a forced start must still start.
    # (It used to start again through a call that dropped `force`, and was skipped.)
    rig.world.then(seen("a", ServerState.STOPPING, 7))
    rig.world.then(cooling(ServerState.FAILED, 600.0, rig.clock), after=0.5)
    launches_ready(rig)
    result = rig.start(SERVER, force=True)
    assert result.outcome == StartOutcome.STARTED
    assert rig.shims.spawned == ["a"]


def test_without_force_the_cooldown_left_by_a_joined_shim_skips(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.STOPPING, 7))
    rig.world.then(cooling(ServerState.FAILED, 600.0, rig.clock), after=0.5)
    result = rig.start(SERVER)
    assert result.outcome == StartOutcome.SKIPPED
    assert rig.shims.spawned == []


def test_a_join_that_times_out_reports_the_real_elapsed_time(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.STARTING, 7))
    result = rig.start(SERVER)
    assert result.outcome == StartOutcome.FAILED
    assert result.error is not None
    assert result.error.type == ErrorType.HANDSHAKE_TIMEOUT
    assert result.error.message == "a is still starting after waiting for it"
    assert result.elapsed_s == pytest.approx(JOIN_BUDGET, abs=0.05)


def test_a_launch_that_reports_failed_is_failed_with_its_stderr_tail(rig: Rig) -> None:
    failure = Failure(ErrorType.EXITED_DURING_STARTUP, "a exited during the handshake")
    rig.shims.scripts["a"] = [
        locked(8),
        {"event": Report.FAILED, "record": {"state": ServerState.FAILED}, "stderr_tail": ["boom", "bang"]},
    ]
    rig.shims.becomes["a"] = seen("a", ServerState.FAILED, last_error=failure, last_exit_code=1)
    result = rig.start(SERVER)
    assert result.outcome == StartOutcome.FAILED
    assert result.stderr_tail == ("boom", "bang")
    assert result.error == failure


def test_a_refused_environment_is_env_invalid_and_nothing_is_launched(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MCPCTL_UNIT_NEEDED", raising=False)
    needy = ServerConfig(name="a", command="true", required_env=("MCPCTL_UNIT_NEEDED",))
    result = rig.start(needy)
    assert result.outcome == StartOutcome.ENV_INVALID
    assert result.error is not None
    assert result.error.type == ErrorType.ENV_MISSING
    assert "MCPCTL_UNIT_NEEDED" in result.error.message
    assert rig.shims.spawned == []


def test_no_wait_returns_spawned_once_the_shim_runs(rig: Rig) -> None:
    rig.shims.scripts["a"] = [locked(8)]
    rig.shims.becomes["a"] = seen("a", ServerState.STARTING, 8)
    result = rig.start(SERVER, wait=False)
    assert result.outcome == StartOutcome.SPAWNED
    assert result.ok
    assert rig.shims.spawned == ["a"]


def test_stopping_a_server_without_a_shim_ends_its_leftovers(rig: Rig) -> None:
    rig.shims.leftovers["a"] = 2
    (result,) = rig.controller.stop([SERVER])
    assert result.outcome == StopOutcome.STOPPED
    assert result.leftovers_ended == 2
    assert rig.shims.calls == []


def test_stopping_a_server_with_nothing_left_is_not_running(rig: Rig) -> None:
    (result,) = rig.controller.stop([SERVER])
    assert result.outcome == StopOutcome.NOT_RUNNING
    assert result.leftovers_ended == 0


def test_stopping_a_live_shim_that_does_not_answer_signals_it_and_waits_for_it(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.READY, 7))
    rig.world.then(seen("a", ServerState.STOPPED), after=0.4)
    (result,) = rig.controller.stop([SERVER])
    assert result.outcome == StopOutcome.STOPPED
    assert rig.shims.calls == [("a", Control.STOP), ("7", f"signal {signal.SIGTERM}")]
    assert result.elapsed_s == pytest.approx(0.4, abs=0.03)


def test_a_stop_never_ends_the_server_of_a_shim_that_took_the_lock_after_the_old_one_left(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.READY, 7))
    rig.world.then(seen("a", ServerState.STOPPED), after=0.4)
    rig.shims.leftovers["a"] = 1  # what end_leftovers would end, were it called
    kernel = rig.shims.holder

    def holder(name: str) -> int | None:
        pid = kernel(name)
        if pid is None:  # the old shim is gone, and a concurrent start's new shim takes the lock at once
            rig.world.then(seen("a", ServerState.STARTING, 9))
        return pid

    rig.shims.holder = holder  # type: ignore[method-assign]
    (result,) = rig.controller.stop([SERVER])
    assert result.outcome == StopOutcome.STOPPED
    assert result.leftovers_ended == 0


def test_restart_of_a_live_shim_is_in_place_and_waits_for_the_new_run(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.READY, 7, attempt=1))
    rig.shims.answers[Control.RESTART] = {"attempt": 2}
    rig.world.then(seen("a", ServerState.STARTING, 7, attempt=2), after=0.2)
    rig.world.then(seen("a", ServerState.READY, 7, attempt=2), after=0.6)
    (result,) = rig.controller.restart([SERVER])
    assert result.outcome == StartOutcome.STARTED
    assert result.elapsed_s == pytest.approx(0.6, abs=0.03)  # not the old run's ready
    assert _besides_status(rig.shims.calls) == [("a", Control.RESTART)]  # no stop: the shim and its clients stay
    assert rig.shims.spawned == []


def test_a_restart_in_place_whose_shim_a_stop_ends_first_says_so_at_once(rig: Rig) -> None:
    # A stop came while the shim ended the old tree: it never started attempt 2, and never will.
    rig.world.then(seen("a", ServerState.READY, 7, attempt=1))
    rig.shims.answers[Control.RESTART] = {"attempt": 2}
    rig.world.then(seen("a", ServerState.STOPPED, None, attempt=1), after=0.3)
    (result,) = rig.controller.restart([SERVER])
    assert result.outcome == StartOutcome.FAILED
    assert result.elapsed_s == pytest.approx(0.3, abs=0.03)  # not after waiting out the budget
    assert "another command stopped it" in result.error.message
    assert rig.shims.spawned == []


def test_restart_falls_back_to_stop_and_start_when_the_shim_cannot_restart_in_place(rig: Rig) -> None:
    rig.world.then(seen("a", ServerState.READY, 7, attempt=1))
    rig.shims.answers[Control.STOP] = {"stopping": True}
    rig.world.then(seen("a", ServerState.STOPPED), after=0.1)
    launches_ready(rig)
    rig.shims.becomes["a"] = seen("a", ServerState.READY, 8, attempt=1)
    (result,) = rig.controller.restart([SERVER])
    assert result.outcome == StartOutcome.STARTED
    assert rig.shims.calls[:2] == [("a", Control.RESTART), ("a", Control.STOP)]
    assert rig.shims.spawned == ["a"]


def test_status_judges_drift_by_the_shims_fresh_record(rig: Rig) -> None:
    # The record on disk is stale (the shim could not write it: a full disk); the shim's own answer
    # says what it runs, and that is what drift compares with the config.
    from mcpctl.config.views import config_hash
    from mcpctl.states import Drift

    running = config_hash(rig.controller.config, SERVER)
    rig.world.then(seen("a", ServerState.READY, 7, config_hash="stale"))
    fresh = StateRecord(name="a", state=ServerState.READY, shim_pid=7, config_hash=running)
    rig.shims.answers[Control.STATUS] = fresh.to_json()
    (obs,) = rig.controller.status(["a"], repair=False)
    assert obs.record.config_hash == running
    assert obs.config_drift == Drift.SAME
