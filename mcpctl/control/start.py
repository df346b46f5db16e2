"""A start as a loop: classify each server from what is observed, act, look again, until each has a result.

No step calls `start` again: a shim that goes away while we wait on it sends its server back to be
classified once more, with the same `force` and the same start time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum

from mcpctl import procfs, protocol
from mcpctl.config import views as snapshot
from mcpctl.config.model import ServerConfig
from mcpctl.constants import CONTROL_TIMEOUT, POLL_INTERVAL, STDIN_CLOSE_GRACE
from mcpctl.contract import Control, Report
from mcpctl.control.launch import Launch
from mcpctl.control.observe import Observation
from mcpctl.control.results import StartResult
from mcpctl.errors import ErrorType, Failure
from mcpctl.hints import TYPE_CHECKING
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.states import SERVING, ServerState, StartOutcome

if TYPE_CHECKING:
    from mcpctl.control.controller import Controller

# How long a freshly spawned shim may take to import and take its lock before we give up on it. A shim
# that dies is seen at once (its report pipe closes); this bound is only for one that hangs, and it is
# generous because a shim booting on a machine busy with dozens of starts can take many seconds.
SHIM_BOOT_TIMEOUT = 60.0
# Slack on top of a server's own timeouts before the CLI stops waiting for its shim.
SLACK = 5.0
# How often a wait asks the shim for its record while the file says nothing new: a shim that cannot
# write its file (a full disk) goes on, its record in memory. A look at the file costs less than an ask,
# which wakes the shim: a restart of fifty servers asking every 0.1 s made 500 asks a second.
ASK_EVERY = 0.5
HELD = (N_("cooling down"), N_("in a backoff"))  # a skip's why (COOLDOWN's {detail}): crash-loop cooldown, backoff


class Situation(StrEnum):
    """Where a server stands when a start looks at it, and so what the start does next."""

    HELD_BACK = "held_back"  # a backoff or cooldown holds it back and the start is not forced: skip it
    IN_BACKOFF = "in_backoff"  # its shim waits to retry: ask it to retry now
    LIVE = "live"  # a shim runs or starts it: join that start
    STOPPING = "stopping"  # its shim is stopping: wait for it to go, then start
    FREE = "free"  # no shim: launch one


def classify(obs: Observation, force: bool, now: float, config_hash: str | None = None) -> Situation:
    """The situation of a server observed as `obs` at `now` (monotonic), to be started with the config
    whose hash is `config_hash`: a changed config ends a cooldown (the cause may be fixed)."""
    changed = config_hash is not None and obs.record.config_hash not in (None, config_hash)
    if obs.cooldown_left_at(now) and not force and not changed:
        return Situation.HELD_BACK
    if obs.state == ServerState.BACKOFF:
        return Situation.IN_BACKOFF
    if obs.state == ServerState.STOPPING:
        return Situation.STOPPING
    if obs.shim_pid is not None:
        return Situation.LIVE
    return Situation.FREE


@dataclass(frozen=True)
class Fresh(Record):
    """To be classified (again): at the start, and after a shim we waited on went away."""


@dataclass(frozen=True)
class Joining(Record):
    """Waiting on someone else's shim: for it to be ready, or, as it was stopping, for it to go.

    If the start we joined fails, that failure is our answer too: joining never starts a second
    attempt behind a failed one (20 callers of a crashing server count one failure, not 20).
    """

    first: ServerState  # what the shim was doing when we joined it
    deadline: float
    ask_at: float = 0.0  # when to ask the shim for its record next, if the file still says nothing new


@dataclass(frozen=True)
class Retrying(Record):
    """A shim in backoff was asked to retry now, or a live one to restart in place: waiting for run
    `attempt` to settle."""

    attempt: int
    deadline: float
    ask_at: float = 0.0  # as Joining's


Pending = Fresh | Joining | Retrying
Step = StartResult | Pending


class Start:
    """One `start` of some servers; `run` returns a result for each."""

    def __init__(
        self,
        ctl: Controller,
        servers: list[ServerConfig],
        began: float,
        wait: bool,
        force: bool,
        timeout: float | None = None,
        spawned: Callable[[], None] | None = None,
    ) -> None:
        """`timeout` (`start --timeout`) bounds this command's wait only: the shims keep their startup_timeout.
        `spawned`: what the caller does while the shims it spawns start up (at every spawn)."""
        self.ctl, self.clock, self.launcher = ctl, ctl.clock, ctl.launcher
        self.spawned = spawned
        self.began, self.wait, self.force, self.timeout = began, wait, force, timeout
        self.wait_until = began + timeout if timeout is not None else float("inf")
        # How long launched shims get to report ready: the longest startup_timeout asked for, and slack.
        self.report_timeout = max((s.startup_timeout for s in servers), default=0.0) + SLACK

    def run(self, servers: list[ServerConfig], phases: dict[str, Pending] | None = None) -> dict[str, StartResult]:
        """A result for each server; those in `phases` begin there (a restart in place: Retrying), not Fresh."""
        by_name = {server.name: server for server in servers}
        pending: dict[str, Pending] = {**dict.fromkeys(by_name, Fresh()), **(phases or {})}
        results: dict[str, StartResult] = {}
        while pending:
            fresh = [by_name[name] for name, phase in pending.items() if isinstance(phase, Fresh)]
            steps: dict[str, Step] = {**pending, **(self._round(fresh) if fresh else {})}
            steps = {name: self._next(by_name[name], step) for name, step in steps.items()}
            results.update({name: step for name, step in steps.items() if isinstance(step, StartResult)})
            pending = {name: step for name, step in steps.items() if not isinstance(step, StartResult)}
            if pending and not any(isinstance(phase, Fresh) for phase in pending.values()):
                self.clock.sleep(POLL_INTERVAL)
        return results

    # -- classify, then act ------------------------------------------------------------------

    def _round(self, servers: list[ServerConfig]) -> dict[str, Step]:
        """Classify under the state lock and launch the free; then act on the others."""
        steps: dict[str, Step] = {}
        others: list[tuple[ServerConfig, Observation, Situation]] = []
        launches: list[Launch] = []
        with self.ctl.locked(), procfs.one_look():  # one pass over /proc for every server's leftovers
            for server in servers:
                obs = self.ctl.observe(server.name)
                digest = snapshot.config_hash(self.ctl.config, self.ctl.config.servers.get(server.name, server))
                situation = classify(obs, self.force, self.clock.monotonic(), digest)
                if situation == Situation.HELD_BACK:
                    steps[server.name] = self._skipped(obs)
                elif situation == Situation.FREE:
                    try:
                        launches.append(self._prepare(server, obs, digest))
                    except OSError as exc:  # this server's failure only: the others' starts go on
                        steps[server.name] = self._unlaunched(obs, exc)
                else:
                    others.append((server, obs, situation))
            try:  # all at once: one interpreter start-up for all their shims
                self.launcher.spawn(launches, self.spawned if launches else None)
            except OSError as exc:
                for launch in launches:
                    launch.close()
                    steps[launch.server.name] = self._unlaunched(self.ctl.observe(launch.server.name), exc)
                launches = []
            self.launcher.wait(launches, {Report.LOCKED, Report.BUSY}, self.clock.monotonic() + SHIM_BOOT_TIMEOUT)
        silent = self._silent([obs for _, obs, situation in others if situation == Situation.LIVE])
        steps.update(self._reports(launches))
        for server, obs, situation in others:
            if situation == Situation.IN_BACKOFF:
                steps[server.name] = self._retry(server, obs)
            elif server.name in silent:
                steps[server.name] = self._unresponsive(obs)
            else:
                steps[server.name] = self._join(server, obs)
        return steps

    def _silent(self, live: list[Observation]) -> set[str]:
        """Those of the live shims that do not answer `status` within CONTROL_TIMEOUT, as `status` asks
        them: all at once, so that a start of many running servers costs one round trip, not one each. A
        shim not listening yet (booting) or going away is no silent one: it is joined, and seen go."""
        names = [obs.name for obs in live]
        with self.launcher.ask_all(names, Control.STATUS) as asking:
            answers = asking.wait(names)
        return {name for name, answer in answers.items() if isinstance(answer, TimeoutError)}

    def _unresponsive(self, obs: Observation) -> StartResult:
        """A shim that holds the lock but does not answer (frozen, or stuck) serves no client, whatever
        its last record says: the start fails, and says how to end that shim."""
        failure = Failure.of(ErrorType.UNRESPONSIVE, name=obs.name, pid=obs.shim_pid, timeout=CONTROL_TIMEOUT)
        silent = replace(obs, state=ServerState.UNRESPONSIVE, record=obs.record.but(last_error=failure))
        return self._result(silent, StartOutcome.FAILED)

    def _skipped(self, obs: Observation) -> StartResult:
        failure = Failure.of(
            ErrorType.COOLDOWN,
            name=obs.name,
            detail=HELD[obs.state == ServerState.BACKOFF],  # a backoff is no cooldown: README keeps them apart
            failures=obs.record.consecutive_failures,
            left=f"{obs.cooldown_left_at(self.clock.monotonic()):.0f}s",
        )
        return self._result(replace(obs, record=obs.record.but(last_error=failure)), StartOutcome.SKIPPED)

    def _prepare(self, server: ServerConfig, obs: Observation, digest: str) -> Launch:
        ctl = self.ctl
        self.launcher.end_leftovers(obs.record)
        ctl.paths.ensure_server(server.name)
        digest = snapshot.remember(ctl.paths, ctl.config, ctl.config.servers.get(server.name, server), digest)
        return self.launcher.prepare(server, ctl.resolve(server), ctl.config.alerts_for(server), digest)

    def _unlaunched(self, obs: Observation, exc: OSError) -> StartResult:
        failure = Failure(
            ErrorType.SPAWN_FAILED,
            f"cannot start a shim for {obs.name}: {exc.strerror or exc}",
            f"check {self.ctl.paths.home} (free space, permissions), then start it again",
        )
        return self._result(replace(obs, record=obs.record.but(last_error=failure)), StartOutcome.FAILED)

    def _retry(self, server: ServerConfig, obs: Observation) -> Step:
        """A shim in backoff: ask it to try now, as a person's start, by the config as it is now (a raised
        startup_timeout, a fixed command: not the settings that failed), and wait for that attempt."""
        ctl = self.ctl
        try:
            answer = self.launcher.call(server.name, Control.RETRY, {"spec": ctl.spec(server)})
            attempt = int(answer["attempt"])
        except TimeoutError:
            return self._unresponsive(obs)
        except (OSError, protocol.ProtocolError, KeyError, TypeError, ValueError):
            return self._join(server, ctl.observe(server.name))
        if answer.get("config_hash") is not None:  # it took the spec (an older shim retries with its own)
            snapshot.remember(ctl.paths, ctl.config, ctl.config.servers.get(server.name, server))
        return Retrying(attempt, self.clock.monotonic() + wait_budget(server))

    def _join(self, server: ServerConfig, obs: Observation) -> Joining:
        return Joining(obs.state, self.deadline(server))

    def deadline(self, server: ServerConfig) -> float:
        """When to stop waiting on a shim that stops and starts `server`: its budget, within --timeout."""
        return min(self.clock.monotonic() + wait_budget(server), self.wait_until)

    # -- what launched shims reported ---------------------------------------------------------

    def _reports(self, launches: list[Launch]) -> dict[str, Step]:
        steps: dict[str, Step] = {}
        locked = []
        for launch in launches:
            if self.wait and _said(launch, Report.LOCKED):
                locked.append(launch)
                continue
            launch.close()
            steps[launch.server.name] = self._not_launched(launch)
        if locked:
            deadline = min(self.clock.monotonic() + self.report_timeout, self.wait_until)
            self.launcher.wait(locked, {Report.READY, Report.FAILED, Report.STOPPED}, deadline)
            for launch in locked:
                steps[launch.server.name] = self._launch_result(launch)
                launch.close()
        return steps

    def _not_launched(self, launch: Launch) -> Step:
        if _said(launch, Report.BUSY):
            # Another shim took the instance lock first (a race we lost): that start is ours to join.
            return self._join(launch.server, self.ctl.observe(launch.server.name))
        return self._without_report(launch.server, self.wait)

    def _launch_result(self, launch: Launch) -> Step:
        events = launch.events or []
        final = next((e for e in reversed(events) if e.get("event") != Report.LOCKED), None)
        if final is not None and final.get("record", {}).get("state") in (ServerState.FAILED, ServerState.STOPPED):
            self.ctl.await_release(launch.server.name, SLACK)  # it has ended the tree and is exiting
        if final is None:
            return self._without_report(launch.server, True)
        obs = self.ctl.observe(launch.server.name)
        if final["event"] == Report.STOPPED and obs.record.last_error is None:
            failure = Failure(ErrorType.NOT_RUNNING, f"{launch.server.name} was stopped before it became ready")
            obs = replace(obs, record=obs.record.but(last_error=failure))
        ready = final["event"] == Report.READY and obs.running
        outcome = StartOutcome.STARTED if ready else StartOutcome.FAILED
        ours = next((e.get("pid") for e in events if e.get("event") == Report.LOCKED), None)
        if outcome == StartOutcome.FAILED and obs.running and obs.shim_pid != ours:
            # It reported a failure, but another shim holds the lock now: someone else started it. Serving,
            # that is our answer; still starting, its outcome is (it may fail as ours did). (Our own shim
            # retrying after a tiny backoff is "starting" again: still our failure.)
            if obs.state not in SERVING:
                return self._join(launch.server, obs)
            outcome = StartOutcome.ALREADY_RUNNING
        heard = launch.heard_at  # when this shim reported, not when the slowest of the batch did
        return self._result(obs, outcome, tuple(final.get("stderr_tail", ())), heard)

    def _without_report(self, server: ServerConfig, wait: bool) -> Step:
        """The shim said nothing conclusive: judge by what is on disk and in the kernel."""
        obs = self.ctl.observe(server.name)
        if obs.state == ServerState.READY:
            return self._result(obs, StartOutcome.STARTED)
        if obs.running:
            return self._result(obs, StartOutcome.SPAWNED) if not wait else self._join(server, obs)
        if obs.record.last_error is None or obs.record.state not in (ServerState.FAILED, ServerState.STOPPED):
            failure = Failure(
                ErrorType.SPAWN_FAILED,
                f"the shim for {server.name} exited without reporting",
                f"see {self.ctl.paths.log_file(server.name)}; run with MCPCTL_DEBUG=1 for details",
            )
            obs = replace(obs, state=ServerState.FAILED, record=obs.record.but(last_error=failure))
        return self._result(obs, StartOutcome.FAILED)

    # -- look again at what we wait on ---------------------------------------------------------

    def _next(self, server: ServerConfig, step: Step) -> Step:
        """A waiting step looked at again; the others as they are."""
        return self._look(server, step) if isinstance(step, Joining | Retrying) else step

    def _look(self, server: ServerConfig, phase: Joining | Retrying) -> Step:
        now = self.clock.monotonic()
        if now >= phase.deadline:
            return self._joined_too_long(server) if isinstance(phase, Joining) else self._retried(server)
        obs = self.ctl.observe(server.name)
        step = self._judged(obs, phase)
        if step is not phase or now < phase.ask_at:
            return step
        step = self._judged(self.ctl.asked(obs), phase)  # the file said nothing new: the shim may know more
        return replace(phase, ask_at=now + ASK_EVERY) if step is phase else step

    def _judged(self, obs: Observation, phase: Joining | Retrying) -> Step:
        return self._joined(obs, phase) if isinstance(phase, Joining) else self._retrying(obs, phase)

    def _joined(self, obs: Observation, join: Joining) -> Step:
        if obs.state in SERVING or (obs.state == ServerState.STARTING and not self.wait):
            return self._result(obs, StartOutcome.ALREADY_RUNNING)
        if obs.state == ServerState.BACKOFF and join.first != ServerState.BACKOFF:
            return self._result(obs, StartOutcome.FAILED)  # the start we joined failed
        if obs.shim_pid is None:
            if join.first != ServerState.STOPPING and obs.state == ServerState.FAILED:
                return self._result(obs, StartOutcome.FAILED)
            return Fresh()  # the shim went away: start it, as this start was asked to (same force)
        return join

    def _joined_too_long(self, server: ServerConfig) -> StartResult:
        obs = self.ctl.asked(self.ctl.observe(server.name))
        failure = Failure(ErrorType.HANDSHAKE_TIMEOUT, f"{server.name} is still {obs.state} after waiting for it")
        if self.timeout is not None and self.clock.monotonic() >= self.wait_until:
            failure = Failure(
                ErrorType.HANDSHAKE_TIMEOUT,
                f"{server.name} was not ready within --timeout {self.timeout:g}s (it is {obs.state})",
                f"its shim goes on by its own startup_timeout; see `mcpctl status {server.name}`",
            )
        return self._result(replace(obs, record=obs.record.but(last_error=failure)), StartOutcome.FAILED)

    def _retrying(self, obs: Observation, retry: Retrying) -> Step:
        """The shim gone settles it whatever its attempt: a stop asked before the attempt ran means it never will."""
        settled = obs.record.attempt >= retry.attempt and obs.state != ServerState.STARTING
        if (
            (obs.state == ServerState.READY and obs.record.attempt >= retry.attempt)  # not the run it replaces
            or obs.shim_pid is None
            or (obs.state == ServerState.BACKOFF and settled)
        ):
            return self._settled(obs)
        if not self.wait and obs.record.attempt >= retry.attempt:
            return self._result(obs, StartOutcome.SPAWNED)
        return retry

    def _retried(self, server: ServerConfig) -> StartResult:
        """The retry did not settle in time: what it came to is what is observed now."""
        return self._settled(self.ctl.asked(self.ctl.observe(server.name)))

    def _settled(self, obs: Observation) -> StartResult:
        return self._result(obs, StartOutcome.STARTED if obs.state == ServerState.READY else StartOutcome.FAILED)

    def _result(
        self, obs: Observation, outcome: StartOutcome, tail: tuple[str, ...] = (), at: float | None = None
    ) -> StartResult:
        """`at`: when the outcome was known (monotonic), if earlier than now."""
        elapsed = (self.clock.monotonic() if at is None else at) - self.began
        return StartResult(obs.name, outcome, obs, round(elapsed, 3), tail)


def wait_budget(server: ServerConfig) -> float:
    """How long to wait on a shim that stops and then starts `server`: long enough for both, and slack."""
    return server.startup_timeout + server.stop_timeout + STDIN_CLOSE_GRACE + SLACK


def _said(launch: Launch, event: Report) -> bool:
    return any(e.get("event") == event for e in launch.events or [])


def explained(result: StartResult) -> StartResult:
    """A failed start always says why; one that ended without an error was stopped by another command."""
    if result.ok or result.error is not None:
        return result
    failure = Failure(
        ErrorType.NOT_RUNNING,
        f"{result.name} was stopped before it became ready (another command stopped it)",
        f"start it again with `mcpctl start {result.name}`",
    )
    obs = result.observation
    return replace(result, observation=replace(obs, record=obs.record.but(last_error=failure)))
