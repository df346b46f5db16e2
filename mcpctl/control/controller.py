"""start, stop, restart and status: the decisions the CLI asks for, returned as data, never printed."""

from __future__ import annotations

import os
import signal
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import psutil

from mcpctl import process, protocol
from mcpctl.config import env_rules
from mcpctl.config import views as snapshot
from mcpctl.config.environment import Resolution, resolve
from mcpctl.config.model import Config, ServerConfig
from mcpctl.constants import CONTROL_TIMEOUT, ENV_LOCK_TIMEOUT, STATE_LOCK_TIMEOUT, STDIN_CLOSE_GRACE
from mcpctl.contract import Control, Report
from mcpctl.control.launch import Launch, spawn_shim, wait_events
from mcpctl.control.observe import Observation, drift, observe
from mcpctl.errors import ErrorType, Failure, MCPCtlError, UsageError
from mcpctl.paths import Paths
from mcpctl.state import lock_holder, state_lock, write_record
from mcpctl.states import SERVING, ServerState

# How long a freshly spawned shim may take to import and take its lock before we give up on it. A shim
# that dies is seen at once (its report pipe closes); this bound is only for one that hangs, and it is
# generous because a shim booting on a machine busy with dozens of starts can take many seconds.
_SHIM_BOOT_TIMEOUT = 60.0
# Slack on top of a server's own timeouts before the CLI stops waiting for its shim.
_SLACK = 5.0
# Leftovers of a killed shim get this long between SIGTERM and SIGKILL.
_LEFTOVER_STOP_TIMEOUT = 3.0


@dataclass(frozen=True)
class StartResult:
    name: str
    outcome: str  # started | already_running | spawned | failed | skipped | env_invalid
    observation: Observation
    elapsed_s: float
    stderr_tail: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome not in ("failed", "skipped", "env_invalid")

    @property
    def error(self) -> Failure | None:
        return None if self.ok else self.observation.record.last_error


@dataclass(frozen=True)
class StopResult:
    name: str
    outcome: str  # stopped | not_running
    elapsed_s: float
    leftovers_ended: int = 0


class Supervisor:
    def __init__(self, paths: Paths, config: Config) -> None:
        self.paths = paths
        self.config = config

    def _locked(self, timeout: float | None = None) -> AbstractContextManager[None]:
        self.paths.ensure()
        return state_lock(self.paths.lock, lock_timeout() if timeout is None else timeout)

    def resolve(self, server: ServerConfig) -> Resolution:
        """The server's environment, resolved and checked against every rule that applies to it."""
        return resolve(server, self.config.base_dir, os.environ, env_rules.rules_for(server, self.config, self._rules))

    @cached_property
    def _rules(self) -> list[dict[str, Any]]:
        return env_rules.stored(self.paths)

    def preflight(self, servers: list[ServerConfig]) -> tuple[list[ServerConfig], dict[str, StartResult]]:
        """Split servers into those whose environment is sound and results for those whose is not."""
        sound, refused = [], {}
        for server in servers:
            resolution = self.resolve(server)
            if resolution.ok:
                sound.append(server)
                continue
            failure = Failure.of(ErrorType.ENV_MISSING, name=server.name, detail="; ".join(resolution.problems))
            obs = observe(self.paths, server.name)
            refused[server.name] = StartResult(
                server.name, "env_invalid", replace(obs, record=obs.record.but(last_error=failure)), 0.0
            )
        return sound, refused

    # -- status ------------------------------------------------------------------------------

    def status(self, names: list[str], repair: bool = True) -> list[Observation]:
        observations = [observe(self.paths, name) for name in names]
        observations = [replace(o, config_drift=drift(self.config, o)) for o in observations]
        broken = [o for o in observations if o.needs_repair]
        if broken and repair:
            self._repair(broken)
        return observations

    def _repair(self, observations: list[Observation]) -> None:
        """Write back what reality says, where no shim lives to do it (under the state lock)."""
        try:
            with self._locked(timeout=1.0):
                for obs in observations:
                    if lock_holder(self.paths.instance_lock(obs.name)) is None:
                        self.paths.ensure_server(obs.name)
                        write_record(self.paths.state_file(obs.name), obs.record)
        except MCPCtlError:
            pass  # a repair is a courtesy (the lock was busy, the disk full): status must still answer

    # -- start -------------------------------------------------------------------------------

    def start(self, servers: list[ServerConfig], wait: bool = True, force: bool = False) -> list[StartResult]:
        """Start each server unless it runs; a server held back by backoff or cooldown is skipped
        (not failed) unless `force`."""
        began = time.monotonic()
        wanted, results = self.preflight(servers)  # nothing is spawned for a server whose env is wrong
        waiting: list[ServerConfig] = []
        retrying: list[ServerConfig] = []
        launches: list[Launch] = []
        with self._locked():
            for server in wanted:
                obs = observe(self.paths, server.name)
                if obs.cooldown_left and not force:
                    results[server.name] = self._skipped(obs, began)
                elif obs.state == ServerState.BACKOFF:
                    retrying.append(server)
                elif obs.state == ServerState.STOPPING or obs.shim_pid is not None:
                    waiting.append(server)
                else:
                    self._clean_leftovers(obs)
                    self.paths.ensure_server(server.name)
                    digest = snapshot.remember(self.paths, self.config, self.config.servers.get(server.name, server))
                    launches.append(
                        spawn_shim(self.paths, server, self.resolve(server), self.config.alerts_for(server), digest)
                    )
            wait_events(launches, {Report.LOCKED, Report.BUSY}, time.monotonic() + _SHIM_BOOT_TIMEOUT)
        for launch in launches:
            if wait and self._launched(launch):
                continue
            launch.close()
            results[launch.server.name] = self._not_launched(launch, began, wait)
        if launches and wait:
            deadline = time.monotonic() + max(s.startup_timeout for s in servers) + _SLACK
            wait_events(launches, {Report.READY, Report.FAILED, Report.STOPPED}, deadline)
            for launch in launches:
                if launch.server.name not in results:
                    results[launch.server.name] = self._launch_result(launch, began)
                launch.close()
        for server in retrying:
            results[server.name] = self._retry_now(server, began, wait)
        for server in waiting:
            results[server.name] = self._join(server, began, wait)
        return [_explained(results[s.name]) for s in servers]

    def _skipped(self, obs: Observation, began: float) -> StartResult:
        failure = Failure.of(
            ErrorType.COOLDOWN,
            name=obs.name,
            failures=obs.record.consecutive_failures,
            left=f"{obs.cooldown_left:.0f}s",
        )
        held = replace(obs, record=replace(obs.record, last_error=failure))
        return StartResult(obs.name, "skipped", held, round(time.monotonic() - began, 3))

    def _retry_now(self, server: ServerConfig, began: float, wait: bool) -> StartResult:
        """A shim in backoff: ask it to try now, as a person's start, and wait for that attempt."""
        try:
            answer = protocol.call(self.paths.socket(server.name), Control.RETRY, timeout=CONTROL_TIMEOUT)
            attempt = int(answer["attempt"])
        except (OSError, protocol.ProtocolError, KeyError, TypeError, ValueError):
            return self._join(server, began, wait)
        deadline = time.monotonic() + server.startup_timeout + server.stop_timeout + STDIN_CLOSE_GRACE + _SLACK
        while time.monotonic() < deadline:
            obs = observe(self.paths, server.name)
            settled = obs.record.attempt >= attempt and obs.state != ServerState.STARTING
            if (
                obs.state == ServerState.READY
                or (settled and obs.shim_pid is None)
                or (obs.state == ServerState.BACKOFF and settled)
            ):
                break
            if not wait and obs.record.attempt >= attempt:
                return StartResult(server.name, "spawned", obs, round(time.monotonic() - began, 3))
            time.sleep(0.02)
        outcome = "started" if obs.state == ServerState.READY else "failed"
        return StartResult(server.name, outcome, obs, round(time.monotonic() - began, 3))

    def _not_launched(self, launch: Launch, began: float, wait: bool) -> StartResult:
        if any(e.get("event") == Report.BUSY for e in launch.events or []):
            # Another shim took the instance lock first (a race we lost): that start is ours to join.
            return self._join(launch.server, began, wait)
        return self._outcome_without_report(launch.server, began, wait)

    def _launched(self, launch: Launch) -> bool:
        return any(e.get("event") == Report.LOCKED for e in launch.events or [])

    def _launch_result(self, launch: Launch, began: float) -> StartResult:
        final = next((e for e in reversed(launch.events or []) if e.get("event") != Report.LOCKED), None)
        if final is not None and final.get("record", {}).get("state") in (ServerState.FAILED, ServerState.STOPPED):
            self._await_release(launch.server.name, _SLACK)  # it has ended the tree and is exiting
        obs = observe(self.paths, launch.server.name)
        elapsed = round(time.monotonic() - began, 3)
        if final is None:
            return self._outcome_without_report(launch.server, began, True)
        tail = tuple(final.get("stderr_tail", ()))
        if final["event"] == Report.STOPPED and obs.record.last_error is None:
            failure = Failure(ErrorType.NOT_RUNNING, f"{launch.server.name} was stopped before it became ready")
            obs = replace(obs, record=obs.record.but(last_error=failure))
        outcome = "started" if final["event"] == Report.READY and obs.running else "failed"
        ours = next((e.get("pid") for e in launch.events or [] if e.get("event") == Report.LOCKED), None)
        if outcome == "failed" and obs.running and obs.shim_pid != ours:
            # It reported a failure, but another shim holds the lock now: someone else started it.
            # (Our own shim retrying after a tiny backoff is "starting" again: still our failure.)
            outcome = "already_running"
        return StartResult(launch.server.name, outcome, obs, elapsed, tail)

    def _outcome_without_report(self, server: ServerConfig, began: float, wait: bool) -> StartResult:
        """The shim said nothing conclusive: judge by what is on disk and in the kernel."""
        obs = observe(self.paths, server.name)
        elapsed = round(time.monotonic() - began, 3)
        if obs.state == ServerState.READY or (obs.running and not wait):
            return StartResult(server.name, "started" if obs.state == ServerState.READY else "spawned", obs, elapsed)
        if obs.running:
            return self._join(server, began, wait)
        if obs.record.last_error is None or obs.record.state not in (ServerState.FAILED, ServerState.STOPPED):
            failure = Failure(
                ErrorType.SPAWN_FAILED,
                f"the shim for {server.name} exited without reporting",
                f"see {self.paths.log_file(server.name)}; run with MCPCTL_DEBUG=1 for details",
            )
            obs = replace(obs, state=ServerState.FAILED, record=obs.record.but(last_error=failure))
        return StartResult(server.name, "failed", obs, elapsed)

    def _join(self, server: ServerConfig, began: float, wait: bool) -> StartResult:
        """Someone else's shim: wait for it to be ready, or, if it is stopping, for it to go, then start.

        If the start we joined fails, that failure is our answer too: joining never starts a second
        attempt behind a failed one (20 callers of a crashing server count one failure, not 20).
        """
        deadline = time.monotonic() + server.startup_timeout + server.stop_timeout + STDIN_CLOSE_GRACE + _SLACK
        first = observe(self.paths, server.name)
        while time.monotonic() < deadline:
            obs = observe(self.paths, server.name)
            elapsed = round(time.monotonic() - began, 3)
            if obs.state in SERVING or (obs.state == ServerState.STARTING and not wait):
                return StartResult(server.name, "already_running", obs, elapsed)
            if obs.state == ServerState.BACKOFF and first.state != ServerState.BACKOFF:
                return StartResult(server.name, "failed", obs, elapsed)  # the start we joined failed
            if obs.shim_pid is None:
                if first.state != ServerState.STOPPING and obs.state == ServerState.FAILED:
                    return StartResult(server.name, "failed", obs, elapsed)
                return self.start([server], wait)[0]
            time.sleep(0.02)
        obs = observe(self.paths, server.name)
        failure = Failure(ErrorType.HANDSHAKE_TIMEOUT, f"{server.name} is still {obs.state} after waiting for it")
        return StartResult(server.name, "failed", replace(obs, record=obs.record.but(last_error=failure)), 0.0)

    def _clean_leftovers(self, obs: Observation) -> int:
        """End what an earlier instance left behind (its shim was killed): tagged processes only."""
        procs = []
        if obs.record.instance_id:
            procs = process.tagged(obs.record.instance_id)
        server = process.same_process(obs.record.pid, obs.record.pid_create_time)
        if server is not None and server.pid not in {p.pid for p in procs}:
            procs.append(server)
        if procs:
            process.end_processes(procs, timeout=_LEFTOVER_STOP_TIMEOUT)
        return len(procs)

    # -- stop --------------------------------------------------------------------------------

    def stop(self, servers: list[ServerConfig]) -> list[StopResult]:
        began = time.monotonic()
        asked: list[tuple[ServerConfig, Observation]] = []
        results: dict[str, StopResult] = {}
        with self._locked():
            for server in servers:
                obs = observe(self.paths, server.name)
                if obs.shim_pid is None:
                    ended = self._clean_leftovers(obs)
                    if obs.needs_repair:
                        write_record(self.paths.state_file(server.name), obs.record)
                    outcome = "stopped" if ended else "not_running"
                    results[server.name] = StopResult(server.name, outcome, 0.0, ended)
                else:
                    self._ask_to_stop(server, obs)
                    asked.append((server, obs))
        for server, obs in asked:
            ended = self._await_exit(server, obs)
            results[server.name] = StopResult(server.name, "stopped", round(time.monotonic() - began, 3), ended)
        return [results[s.name] for s in servers]

    def _ask_to_stop(self, server: ServerConfig, obs: Observation) -> None:
        try:
            protocol.call(self.paths.socket(server.name), Control.STOP, timeout=CONTROL_TIMEOUT)
        except (OSError, protocol.ProtocolError):
            self._signal_shim(obs, signal.SIGTERM)

    def _await_exit(self, server: ServerConfig, obs: Observation) -> int:
        """Wait for the shim to end its tree and exit; if it hangs, kill it and end the tree ourselves."""
        if not self._await_release(server.name, STDIN_CLOSE_GRACE + server.stop_timeout + _SLACK):
            self._signal_shim(obs, signal.SIGKILL)
            self._await_release(server.name, _SLACK)
        after = observe(self.paths, server.name)
        ended = self._clean_leftovers(after)
        if after.needs_repair:
            with self._locked():
                write_record(self.paths.state_file(server.name), after.record)
        return ended

    def _await_release(self, name: str, timeout: float) -> bool:
        """Wait until no shim holds the instance lock of `name`; False if one still does."""
        lock = self.paths.instance_lock(name)
        deadline = time.monotonic() + timeout
        while lock_holder(lock) is not None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _signal_shim(self, obs: Observation, sig: int) -> None:
        """Signal the lock holder, but only if it is the shim the record names or runs mcpctl.shim."""
        if obs.shim_pid is None:
            return
        try:
            proc = psutil.Process(obs.shim_pid)
            if "mcpctl.shim" in " ".join(proc.cmdline()):
                proc.send_signal(sig)
        except (psutil.Error, OSError):
            pass

    # -- restart -----------------------------------------------------------------------------

    def restart(self, servers: list[ServerConfig], wait: bool = True, force: bool = False) -> list[StartResult]:
        """Stop and start; a server whose environment is wrong is left as it is (running, if it runs)."""
        sound, refused = self.preflight(servers)
        self.stop(sound)
        started = {r.name: r for r in self.start(sound, wait, force)} if sound else {}
        return [refused.get(s.name) or started[s.name] for s in servers]


def _explained(result: StartResult) -> StartResult:
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


def lock_timeout() -> float:
    """Seconds to wait for the state lock: $MCPCTL_LOCK_TIMEOUT, else the default."""
    raw = os.environ.get(ENV_LOCK_TIMEOUT)
    if not raw:
        return STATE_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"${ENV_LOCK_TIMEOUT} must be a number of seconds, not {raw!r}") from None
    return max(value, 0.0)


def with_timeouts(
    servers: list[ServerConfig], startup: float | None = None, stop: float | None = None
) -> list[ServerConfig]:
    """The servers with the timeouts given on the command line in place of the configured ones."""
    return [
        replace(
            s,
            startup_timeout=s.startup_timeout if startup is None else startup,
            stop_timeout=s.stop_timeout if stop is None else stop,
        )
        for s in servers
    ]
