"""start, stop, restart and status: the decisions the CLI asks for, returned as data, never printed."""

from __future__ import annotations

import math
import os
import signal
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import cached_property, partial

from mcpctl import procfs, protocol
from mcpctl.clock import SYSTEM_CLOCK, Clock
from mcpctl.config import env_rules
from mcpctl.config import views as snapshot
from mcpctl.config.environment import Resolution, resolve
from mcpctl.config.model import Config, ServerConfig
from mcpctl.constants import CONTROL_TIMEOUT, ENV_LOCK_TIMEOUT, POLL_INTERVAL, STATE_LOCK_TIMEOUT, STDIN_CLOSE_GRACE
from mcpctl.contract import Control
from mcpctl.control import wishes
from mcpctl.control.early import Early
from mcpctl.control.launch import Launcher, ShimLauncher, spec_of
from mcpctl.control.observe import SILENT, Observation, answered, drift, ended_by_stop, observe, put_right, vouched
from mcpctl.control.results import StartResult, StopResult
from mcpctl.control.start import SLACK, Retrying, Start, explained
from mcpctl.control.wishes import Wish
from mcpctl.errors import ErrorType, Failure, MCPCtlError, StateDirError, UsageError
from mcpctl.hints import Any
from mcpctl.paths import Paths
from mcpctl.state import state_lock
from mcpctl.states import ServerState, StartOutcome, StopOutcome

Observer = Callable[[Paths, str], Observation]
# Where a live shim restarts its server in place (`mcpctl/restart`); a stopping one is waited for instead.
RESTARTABLE = frozenset({ServerState.STARTING, ServerState.READY, ServerState.UNHEALTHY, ServerState.BACKOFF})


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
        early: Early | None = None,
    ) -> None:
        """`early`: a shim started ahead for the one server this command may start (`mcpctl.control.early`)."""
        self.paths = paths
        self.config = config
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.origin = str(config.path.absolute()) if config.path else None  # the config file shims start from
        self.launcher: Launcher = launcher or ShimLauncher(paths, self.origin, early)
        self._observer = observer
        self._resolved: dict[str, tuple[ServerConfig, Resolution]] = {}

    def observe(self, name: str) -> Observation:
        """What is true about `name` right now."""
        return self._observer(self.paths, name)

    def locked(self, timeout: float | None = None) -> AbstractContextManager[None]:
        """The state-dir lock, for decisions that must not race another command's."""
        self.paths.ensure()
        return state_lock(self.paths.lock, lock_timeout() if timeout is None else timeout)

    def resolve(self, server: ServerConfig) -> Resolution:
        """The server's environment, resolved and checked against every rule that applies to it (once per
        server and command: the preflight's resolution is the one the shim is given)."""
        known = self._resolved.get(server.name)
        if known is None or known[0] != server:
            rules = env_rules.rules_for(server, self.config, self._rules)
            known = self._resolved[server.name] = (server, resolve(server, self.config.base_dir, os.environ, rules))
        return known[1]

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
        """Every server as it is. Every shim is asked at once, and while they answer the config is hashed
        for drift. A shim whose answer is in by then, vouched for by the lock and its record file, is
        what it says; each other server is observed, and a live shim among them waited for (until
        CONTROL_TIMEOUT: then it is unresponsive). A stopping shim that does not answer is not waited for."""
        with self.launcher.ask_all(names, Control.STATUS) as asking:
            servers = self.config.servers if self.config.path is not None else {}
            hashed = {name: snapshot.config_hash(self.config, servers[name]) for name in asking.sent if name in servers}
            found = {}
            for name, answer in asking.answered().items():
                obs = vouched(self.paths, name, answer, self.launcher.holder(name))
                if obs is not None:
                    found[name] = obs
            looked = {name: self.observe(name) for name in names if name not in found}
            live = [o.name for o in looked.values() if o.shim_pid is not None and o.state != ServerState.STOPPING]
            answers = asking.wait(live)
        found.update(looked)
        found.update((name, self._asked(looked[name], answers[name])) for name in live)
        observations = [
            replace(obs, config_drift=drift(self.config, obs, hashed)) for obs in map(found.__getitem__, names)
        ]
        broken = [o for o in observations if o.needs_repair]
        if broken and repair:
            self._repair(broken)
        return observations

    def _asked(self, obs: Observation, answer: Any) -> Observation:
        """A live shim's own answer: its fresh record (which says what it could not write to disk), or
        `unresponsive` when it did not answer within CONTROL_TIMEOUT (frozen, or stuck)."""
        if isinstance(answer, TimeoutError):
            silent = SILENT.format(pid=obs.shim_pid, timeout=CONTROL_TIMEOUT)
            return replace(obs, state=ServerState.UNRESPONSIVE, warning=silent)
        fresh = answered(obs.name, answer, obs.shim_pid)  # None: not listening yet (booting), or going
        return obs if fresh is None else replace(fresh, warning=obs.warning)

    def asked(self, obs: Observation) -> Observation:
        """`obs` as its live shim says it is now, for a wait that the file on disk may never end: a shim
        that cannot write (a full disk) keeps its record in memory. `obs` when no shim answers."""
        if obs.shim_pid is None:
            return obs
        try:
            answer = self.launcher.call(obs.name, Control.STATUS)
        except (OSError, protocol.ProtocolError):
            return obs
        return self._asked(obs, answer)

    def _repair(self, observations: list[Observation]) -> None:
        """Write back what reality says, where no shim lives to do it (under the state lock)."""
        try:
            with self.locked(timeout=1.0):
                for obs in observations:
                    put_right(self.paths, obs)
        except MCPCtlError:
            pass  # a repair is a courtesy (the lock was busy, the disk full): status must still answer

    # -- start -------------------------------------------------------------------------------

    def start(
        self, servers: list[ServerConfig], wait: bool = True, force: bool = False, timeout: float | None = None
    ) -> list[StartResult]:
        """Start each server unless it runs; a server held back by backoff or cooldown is skipped
        (not failed) unless `force`. `timeout` bounds the wait for ready, never the shims' startup_timeout."""
        began = self.clock.monotonic()
        # For `resume`, whatever happens next: written while the shims just spawned boot (~20 ms of 50
        # files and an fsync, which used to come before anything was spawned), or at the end when
        # nothing was. A start interrupted before its spawn leaves the wish as it was, as a stop does.
        wish = Once(partial(wishes.record, self.paths, [s.name for s in servers], Wish.RUNNING))
        try:
            wanted, results = self.preflight(servers)  # nothing is spawned for a server whose env is wrong
            results.update(Start(self, servers, began, wait, force, timeout, spawned=wish).run(wanted))
        finally:
            wish()
        return [explained(results[s.name]) for s in servers]

    # -- stop --------------------------------------------------------------------------------

    def stop(self, servers: list[ServerConfig]) -> list[StopResult]:
        began = self.clock.monotonic()
        asked: list[tuple[ServerConfig, int]] = []  # each server and the shim that holds its lock
        results: dict[str, StopResult] = {}
        with self.locked():
            for server in servers:  # the kernel's word on the holder first: the record is read only
                holder = self.launcher.holder(server.name)  # where no shim holds the lock
                if holder is None:
                    obs = self.observe(server.name)  # it looks twice: a shim may have just taken the lock
                    if obs.shim_pid is None:
                        results[server.name] = self._not_running(obs)
                        continue
                    holder = obs.shim_pid
                asked.append((server, holder))
            reached = self.launcher.ask_to_stop([(server.name, pid) for server, pid in asked])
            for (_, pid), ok in zip(asked, reached, strict=True):  # every shim at once, then wait for all
                if not ok:
                    self.launcher.signal(pid, signal.SIGTERM)
        # A person's stop: `resume` skips it. Written (and synced) while the shims end their servers,
        # not before they are asked: a stop interrupted before this line leaves the wish as it was.
        wishes.record(self.paths, [s.name for s in servers], Wish.STOPPED)
        took, killed = {}, {}
        for server, pid in asked:  # each waits for its own shim, while the others end theirs
            if not self._await_exit(server, pid):
                killed[server.name] = pid
            took[server.name] = round(self.clock.monotonic() - began, 3)
        # Once for all, and one pass over /proc for all their leftovers: a concurrent start may have
        # launched new shims by now, but their processes carry new tags.
        # A server's stop took until its shim exited and what it left was ended too (a leftover that
        # ignores SIGTERM takes seconds); another server's leftovers, ended meanwhile, are not its time.
        with self.locked(), procfs.one_look():
            for server, _ in asked:
                ending = self.clock.monotonic()
                ended, unwritten = self._end_leftovers(server.name, killed.get(server.name))
                elapsed = round(took[server.name] + self.clock.monotonic() - ending, 3)
                results[server.name] = StopResult(server.name, StopOutcome.STOPPED, elapsed, ended, unwritten)
        return [results[s.name] for s in servers]

    def _not_running(self, obs: Observation) -> StopResult:
        """No shim: end what a killed one left behind, and put the record right (under the state lock)."""
        began = self.clock.monotonic()
        ended = self.launcher.end_leftovers(obs.record)
        if obs.lost:
            obs = ended_by_stop(self.paths, obs, ended)  # what this stop did about it, not what it found
        outcome = StopOutcome.STOPPED if ended else StopOutcome.NOT_RUNNING
        unwritten = self._put_right(obs)
        return StopResult(obs.name, outcome, round(self.clock.monotonic() - began, 3), ended, unwritten)

    def _put_right(self, obs: Observation) -> str | None:
        """`put_right`, in a stop: a record that cannot be written (a full disk) does not undo the stop, whose
        result says so instead. What could not be written, if anything."""
        try:
            put_right(self.paths, obs)
        except StateDirError as exc:
            return exc.message
        return None

    def _await_exit(self, server: ServerConfig, shim_pid: int) -> bool:
        """Wait for the shim to end its tree and exit; if it hangs, kill it (its tree is ended after).
        Whether it stopped by itself."""
        if self.await_release(server.name, STDIN_CLOSE_GRACE + server.stop_timeout + SLACK):
            return True
        self.launcher.signal(shim_pid, signal.SIGKILL)
        self.await_release(server.name, SLACK)
        return False

    def _end_leftovers(self, name: str, killed: int | None = None) -> tuple[int, str | None]:
        """What a stopped shim left behind, or a shim this stop had to kill (`killed`, its pid), ended;
        never a new shim's server. Under the lock. How many, and what of the record could not be written."""
        after = self.observe(name)
        if after.shim_pid is not None:
            return 0, None
        ended = self.launcher.end_leftovers(after.record)
        if after.lost:
            after = ended_by_stop(self.paths, after, ended, killed)
        return ended, self._put_right(after)

    def await_release(self, name: str, timeout: float) -> bool:
        """Wait until no shim holds the instance lock of `name`; False if one still does."""
        deadline = self.clock.monotonic() + timeout
        while (pid := self.launcher.holder(name)) is not None:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return False
            self.launcher.await_exit(pid, min(POLL_INTERVAL, left))  # woken by the exit, not the next look
        return True

    # -- restart -----------------------------------------------------------------------------

    def restart(
        self, servers: list[ServerConfig], wait: bool = True, force: bool = False, timeout: float | None = None
    ) -> list[StartResult]:
        """A live shim replaces its server in place with the config as it is now, keeping its clients
        (a person's restart: at once, even in a backoff); the others are stopped and started (a stopped
        server is simply started). A server whose environment is wrong is left as it is. `timeout`
        bounds the wait for ready, as for `start`."""
        began = self.clock.monotonic()
        sound, refused = self.preflight(servers)
        start = Start(self, sound, began, wait, force, timeout)
        with self.locked():
            asked = {s.name: phase for s in sound if (phase := self._restart_in_place(s, start)) is not None}
        self.stop([s for s in sound if s.name not in asked])
        wishes.record(self.paths, [s.name for s in servers], Wish.RUNNING)  # after that stop's "stopped"
        started = start.run(sound, dict(asked)) if sound else {}
        return [refused.get(s.name) or explained(started[s.name]) for s in servers]

    def _restart_in_place(self, server: ServerConfig, start: Start) -> Retrying | None:
        """Ask a live shim to restart its server with the current config; None when it is not live, is
        stopping, is stopped by a signal (SIGSTOP: it would answer nothing within the call's timeout, and
        the stop continues it to end), or cannot (an older shim): then it is stopped and started."""
        if self.observe(server.name).state not in RESTARTABLE:
            return None
        if (holder := self.launcher.holder(server.name)) is None or self.launcher.frozen(holder):
            return None
        try:
            attempt = int(self.launcher.call(server.name, Control.RESTART, {"spec": self.spec(server)})["attempt"])
        except (OSError, protocol.ProtocolError, KeyError, TypeError, ValueError):
            return None
        snapshot.remember(self.paths, self.config, self.config.servers.get(server.name, server))
        return Retrying(attempt, start.deadline(server))

    def spec(self, server: ServerConfig) -> dict[str, Any]:
        """What a live shim is handed (as JSON) to run `server` by the config as it is now."""
        digest = snapshot.config_hash(self.config, server)
        alerts = self.config.alerts_for(server)
        return spec_of(server, self.resolve(server), alerts, digest, self.paths.project, self.origin)


class Once:
    """An action done the first time this is called, and never again."""

    __slots__ = ("_action",)

    def __init__(self, action: Callable[[], object]) -> None:
        self._action: Callable[[], object] | None = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


def lock_timeout() -> float:
    """Seconds to wait for the state lock: $MCPCTL_LOCK_TIMEOUT, else the default."""
    raw = os.environ.get(ENV_LOCK_TIMEOUT)
    if not raw:
        return STATE_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(f"${ENV_LOCK_TIMEOUT} must be a number of seconds, not {raw!r}")
    return max(value, 0.0)


def with_timeouts(servers: list[ServerConfig], stop: float | None = None) -> list[ServerConfig]:
    """The servers with the stop timeout given on the command line in place of the configured one (a
    start's --timeout is not one: it bounds the command's wait, never the shim's startup_timeout)."""
    return [replace(s, stop_timeout=s.stop_timeout if stop is None else stop) for s in servers]
