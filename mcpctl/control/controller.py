"""start, stop, restart and status: the decisions the CLI asks for, returned as data, never printed."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import cached_property
from typing import Any

from mcpctl import protocol
from mcpctl.clock import SYSTEM_CLOCK, Clock
from mcpctl.config import env_rules
from mcpctl.config.environment import Resolution, resolve
from mcpctl.config.model import Config, ServerConfig
from mcpctl.constants import CONTROL_TIMEOUT, ENV_LOCK_TIMEOUT, POLL_INTERVAL, STATE_LOCK_TIMEOUT, STDIN_CLOSE_GRACE
from mcpctl.contract import Control
from mcpctl.control.launch import Launcher, ShimLauncher
from mcpctl.control.observe import Observation, drift, observe
from mcpctl.control.results import StartResult, StopResult
from mcpctl.control.start import SLACK, Start, explained
from mcpctl.errors import ErrorType, Failure, MCPCtlError, UsageError
from mcpctl.paths import Paths
from mcpctl.state import StateRecord, state_lock, write_record
from mcpctl.states import LIVE, ServerState, StartOutcome, StopOutcome

Observer = Callable[[Paths, str], Observation]


class Controller:
    """The CLI-side core. Its clock, launcher and observer are passed in by unit tests; the defaults are real."""

    def __init__(
        self,
        paths: Paths,
        config: Config,
        *,
        clock: Clock | None = None,
        launcher: Launcher | None = None,
        observer: Observer = observe,
    ) -> None:
        self.paths = paths
        self.config = config
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.launcher: Launcher = launcher or ShimLauncher(paths)
        self._observer = observer

    def observe(self, name: str) -> Observation:
        """What is true about `name` right now."""
        return self._observer(self.paths, name)

    def locked(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """The state-dir lock, for decisions that must not race another command's."""
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
            obs = self.observe(server.name)
            refused[server.name] = StartResult(
                server.name, StartOutcome.ENV_INVALID, replace(obs, record=obs.record.but(last_error=failure)), 0.0
            )
        return sound, refused

    # -- status ------------------------------------------------------------------------------

    def status(self, names: list[str], repair: bool = True) -> list[Observation]:
        observations = [self._asked(self.observe(name)) for name in names]
        observations = [replace(o, config_drift=drift(self.config, o)) for o in observations]
        broken = [o for o in observations if o.needs_repair]
        if broken and repair:
            self._repair(broken)
        return observations

    def _asked(self, obs: Observation) -> Observation:
        """A live shim's own answer: its fresh record (which says what it could not write to disk), or
        `unresponsive` when it does not answer within CONTROL_TIMEOUT (frozen, or stuck)."""
        if obs.shim_pid is None or obs.state == ServerState.STOPPING:
            return obs
        try:
            record = StateRecord.from_json(self.launcher.call(obs.name, Control.STATUS))
        except TimeoutError:
            silent = f"its shim (pid {obs.shim_pid}) did not answer within {CONTROL_TIMEOUT:g}s"
            return replace(obs, state=ServerState.UNRESPONSIVE, warning=silent)
        except (OSError, protocol.ProtocolError, ValueError, TypeError):
            return obs  # not listening yet (booting), or going: the record on disk is what there is
        if record.shim_pid != obs.shim_pid or record.state not in LIVE:
            return obs
        return replace(obs, state=record.state, record=record)

    def _repair(self, observations: list[Observation]) -> None:
        """Write back what reality says, where no shim lives to do it (under the state lock)."""
        try:
            with self.locked(timeout=1.0):
                for obs in observations:
                    if self.launcher.holder(obs.name) is None:
                        self.paths.ensure_server(obs.name)
                        write_record(self.paths.state_file(obs.name), obs.record)
        except MCPCtlError:
            pass  # a repair is a courtesy (the lock was busy, the disk full): status must still answer

    # -- start -------------------------------------------------------------------------------

    def start(self, servers: list[ServerConfig], wait: bool = True, force: bool = False) -> list[StartResult]:
        """Start each server unless it runs; a server held back by backoff or cooldown is skipped
        (not failed) unless `force`."""
        began = self.clock.monotonic()
        wanted, results = self.preflight(servers)  # nothing is spawned for a server whose env is wrong
        results.update(Start(self, servers, began, wait, force).run(wanted))
        return [explained(results[s.name]) for s in servers]

    # -- stop --------------------------------------------------------------------------------

    def stop(self, servers: list[ServerConfig]) -> list[StopResult]:
        began = self.clock.monotonic()
        asked: list[tuple[ServerConfig, Observation]] = []
        results: dict[str, StopResult] = {}
        with self.locked():
            for server in servers:
                obs = self.observe(server.name)
                if obs.shim_pid is None:
                    results[server.name] = self._not_running(obs)
                else:
                    self._ask_to_stop(server, obs)
                    asked.append((server, obs))
        for server, obs in asked:
            ended = self._await_exit(server, obs)
            elapsed = round(self.clock.monotonic() - began, 3)
            results[server.name] = StopResult(server.name, StopOutcome.STOPPED, elapsed, ended)
        return [results[s.name] for s in servers]

    def _not_running(self, obs: Observation) -> StopResult:
        """No shim: end what a killed one left behind, and put the record right (under the state lock)."""
        ended = self.launcher.end_leftovers(obs.record)
        if obs.needs_repair:
            write_record(self.paths.state_file(obs.name), obs.record)
        return StopResult(obs.name, StopOutcome.STOPPED if ended else StopOutcome.NOT_RUNNING, 0.0, ended)

    def _ask_to_stop(self, server: ServerConfig, obs: Observation) -> None:
        try:
            self.launcher.call(server.name, Control.STOP)
        except (OSError, protocol.ProtocolError):
            self._signal_shim(obs, signal.SIGTERM)

    def _await_exit(self, server: ServerConfig, obs: Observation) -> int:
        """Wait for the shim to end its tree and exit; if it hangs, kill it and end the tree ourselves."""
        if not self.await_release(server.name, STDIN_CLOSE_GRACE + server.stop_timeout + SLACK):
            self._signal_shim(obs, signal.SIGKILL)
            self.await_release(server.name, SLACK)
        after = self.observe(server.name)
        ended = self.launcher.end_leftovers(after.record)
        if after.needs_repair:
            with self.locked():
                write_record(self.paths.state_file(server.name), after.record)
        return ended

    def await_release(self, name: str, timeout: float) -> bool:
        """Wait until no shim holds the instance lock of `name`; False if one still does."""
        deadline = self.clock.monotonic() + timeout
        while self.launcher.holder(name) is not None:
            if self.clock.monotonic() >= deadline:
                return False
            self.clock.sleep(POLL_INTERVAL)
        return True

    def _signal_shim(self, obs: Observation, sig: int) -> None:
        """Signal the lock holder, but only if it is the shim the record names or runs mcpctl.shim."""
        if obs.shim_pid is not None:
            self.launcher.signal(obs.shim_pid, sig)

    # -- restart -----------------------------------------------------------------------------

    def restart(self, servers: list[ServerConfig], wait: bool = True, force: bool = False) -> list[StartResult]:
        """Stop and start; a server whose environment is wrong is left as it is (running, if it runs)."""
        sound, refused = self.preflight(servers)
        self.stop(sound)
        started = {r.name: r for r in self.start(sound, wait, force)} if sound else {}
        return [refused.get(s.name) or started[s.name] for s in servers]


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
