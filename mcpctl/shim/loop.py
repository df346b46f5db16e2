"""The per-server shim: supervises one MCP server for as long as it should run (see docs/ARCHITECTURE.md).

Started detached by the CLI as `python -m mcpctl.shim NAME`, it holds the instance lock for its life, alone
writes the record and events, restarts the server by policy and answers control requests; only the stdlib
(psutil only to end a tree, and off Linux). Every state change goes through `Shim._enter`.
"""

from __future__ import annotations

import os
import selectors
from collections.abc import Callable, Iterable, Iterator

from mcpctl import procfs
from mcpctl.clock import SYSTEM_CLOCK, Clock
from mcpctl.constants import SHARE_PER_CLIENT
from mcpctl.contract import Report, Spec
from mcpctl.errors import LAST_FAILURE, ErrorType, Failure, classify_exit
from mcpctl.health import Health
from mcpctl.hints import Any
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths
from mcpctl.redaction import Redactor
from mcpctl.shim import control_requests, era, machine, policy, signals
from mcpctl.shim.ledger import FORGOTTEN_BY_A_RUN, FORGOTTEN_BY_A_START, NO_COOLDOWN, Ledger, ReportPipe
from mcpctl.shim.listener import SocketServer
from mcpctl.shim.log import log, log_environment
from mcpctl.shim.machine import Action, Happening
from mcpctl.shim.monitor import Watch, announce
from mcpctl.shim.ready import crash
from mcpctl.shim.requested import Requested
from mcpctl.shim.run import Ready, Run, RunFactory, ServerRun
from mcpctl.shim.session import Session
from mcpctl.state import StateRecord
from mcpctl.states import RUNNING, SERVING, ServerState


@dataclass(frozen=True)
class Finished(Record):
    """The shim is done: the final record is written; `code` is its exit code."""

    code: int


class Shim(Requested):
    def __init__(
        self,
        paths: Paths,
        spec: Spec,
        *,
        clock: Clock = SYSTEM_CLOCK,
        make_run: RunFactory = ServerRun,
        reports: ReportPipe | None = None,
        reaped: Callable[[], Iterable[tuple[int, int]]] = signals.reaped,
    ) -> None:
        """`make_run` makes each run of the server; `reaped` reaps ended children as (pid, status)."""
        self.paths, self.spec, self.clock, self.make_run, self.reaped = paths, spec, clock, make_run, reaped
        self.redact = Redactor(spec.secrets)
        self.log_path = paths.log_file(spec.name)
        self.instance_id = os.urandom(16).hex()
        self.selector = selectors.DefaultSelector()
        self.ledger = Ledger(paths, spec.name, clock.monotonic)
        self.reports = reports or ReportPipe(self.log_path)
        self.run_: Run | None = None
        self.socket: SocketServer | None = None
        self.control: control_requests.ControlChannel | None = None
        self.session = Session(spec, self.selector, self.redact, clock.monotonic)
        if spec.share == SHARE_PER_CLIENT:  # its module only then: a shared shim stays smaller
            from mcpctl.shim import per_client

            per_client.install(self, str(self.log_path), self.ledger.write)
        self.mux = self.session.mux
        self.stop_requested = False
        self.restart_to: Spec | None = None  # a person's restart asked for (`mcpctl/restart`), with its spec
        self.manual = True  # the current attempt was asked for by a person (start, --force), not the policy
        self.retry_at = 0.0  # monotonic: when a server in backoff is started again
        self.ready_since = 0.0  # monotonic: when the current run became ready
        metrics_path = paths.server_dir(spec.name) / "metrics.jsonl"
        self.watch = Watch(spec, metrics_path, self.mux.take_counts, clock.monotonic)
        self.session.on_other = self.watch.on_response  # what is no client's: the answer to our ping
        self.finished: Finished | None = None

    @property
    def record(self) -> StateRecord:
        return self.ledger.record

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        signals.install(self.selector, self._on_stop_signal)
        self.start()
        if self.finished is None:
            control = self.paths.control_socket(self.spec.name)
            self.control = control_requests.ControlChannel(control, self.selector, self)
            self.socket = SocketServer(self.paths.socket(self.spec.name), self.selector, self.session.accept)
        while self.finished is None:
            wakeup = min(self._next_wakeup(), self.mux.next_deadline())
            for key, mask in self.selector.select(max(0.0, min(wakeup - self.clock.monotonic(), 1.0))):
                key.data(mask)
            for listening in (self.socket, self.control.server if self.control else None):
                if listening is not None:
                    listening.resume()  # after a pause for want of file descriptors
            self.step()
        return self.finished.code

    def start(self) -> None:
        """Take over the previous record and start the first run (a person's start)."""
        log_environment(self.spec.env_sources)
        self.ledger.take_over(
            instance_id=self.instance_id,
            shim_pid=os.getpid(),
            shim_create_time=None,
            transport=self.spec.transport,
            config_hash=self.spec.config_hash,
            project=self.spec.project or None,
            config_file=self.spec.config_file,
            stopped_at=None,
        )
        self._start_run(manual=True)

    def step(self) -> None:
        """Reap, expire waiting clients, and act on what happened (until the state changes)."""
        self._reap()
        self.mux.expire()
        self.ledger.retry()
        state = self.record.state
        for happening, detail in self._happenings(state):
            self._on(happening, detail)
            if self.record.state != state or self.finished is not None:
                return

    def _happenings(self, state: ServerState) -> Iterator[tuple[Happening, object]]:
        """What happened since the last step, in the order it is acted on; lazily, so that
        nothing after a state change is even looked at."""
        run = self.run_
        if self.stop_requested:
            yield Happening.STOP_REQUESTED, None
        elif self.restart_to is not None:
            yield Happening.RESTART_REQUESTED, self.restart_to
        elif state == ServerState.STARTING and run is not None:
            if run.exit_code is not None:
                run.drain()  # its last words may be the handshake answer or the ready line
            if (verdict := run.judge()) is not None:
                yield (Happening.JUDGED_READY if isinstance(verdict, Ready) else Happening.JUDGED_FAILED), verdict
        elif state in SERVING:
            yield from self._serving(run)
        elif state == ServerState.BACKOFF and self.clock.monotonic() >= self.retry_at:
            yield Happening.RETRY_DUE, None

    def _serving(self, run: Run | None) -> Iterator[tuple[Happening, object]]:
        if run is not None and run.exit_code is not None:
            run.drain()
            up = self.clock.monotonic() - self.ready_since
            yield Happening.RUN_EXITED, crash(self.spec.name, run.exit_code, up, self.log_path)
            return
        if (lost := run.lost() if run is not None else None) is not None:  # over as surely as by an exit
            yield Happening.RUN_EXITED, lost
            return
        if self.record.consecutive_failures and self.clock.monotonic() - self.ready_since >= self.spec.reset_after:
            yield Happening.RESET_DUE, None
        if (restart := self._sample()) is not None:
            yield Happening.RESOURCE_RESTART, restart
        if (health := self.watch.health()) is not None:
            yield machine.ping_happening(health.ok, health.consecutive_failures, self.spec.unhealthy_after), health

    def _on(self, happening: Happening, detail: object) -> None:
        """Act on `happening` as the table says for the current state."""
        match machine.action(self.record.state, happening), detail:
            case Action.SERVE, Ready():
                self._serve(detail)
            case Action.END_RUN, Failure() | None:
                self._end_run(detail)
            case Action.START_RUN, _:
                self._start_run(manual=self.manual)
            case Action.MARK_UNHEALTHY, Health():
                self._mark_unhealthy(detail)
            case Action.MARK_HEALTHY, Health():
                self._enter(ServerState.READY, event="healthy", details={"latency_ms": detail.latency_ms},
                            health=detail.to_json())  # fmt: skip
            case Action.NOTE_HEALTH, Health():
                self.ledger.write(health=detail.to_json())
            case Action.RESET_FAILURES, _:
                self.ledger.write(event="reset", details={"after_s": self.spec.reset_after}, consecutive_failures=0)
            case Action.FINISH, _:
                self.finish(ServerState.STOPPED, None)
            case Action.RESTART_RUN, Spec():
                self._restart_in_place(detail)
            case None, _:
                pass  # not in the table: nothing changes
            case unexpected:
                raise AssertionError(f"{happening} in {self.record.state}: no way to act on {unexpected}")

    def _enter(
        self,
        state: ServerState,
        *,
        event: str | None = None,
        details: dict[str, Any] | None = None,
        report: Report | None = None,
        **changes: Any,
    ) -> None:
        """The one transition point: set the state (and `changes`), save the record, append the event,
        and tell the CLI that started us, when that is the first outcome it waits for."""
        self.ledger.write(event, details, state=state, **changes)
        if report is not None:
            self.reports.send(report, self.record)

    # -- a run: start, ready, end ------------------------------------------------------------

    def _start_run(self, manual: bool) -> None:
        self.manual = manual
        self.watch.end()
        run = self.make_run(self.spec, self.instance_id, self.selector, self.redact, str(self.log_path), self.clock)
        era.pin(run, self.run_, self.record, self.spec)  # found legacy under this config: not probed again
        self.run_ = run
        self.reports.new_run(run)
        failure = run.spawn()
        restarted, attempt = not manual, self.record.attempt + 1
        if restarted:
            self.watch.restarted()
        self._enter(
            ServerState.STARTING,
            event="restarted" if restarted else "started",
            details={"attempt": attempt, "pid": run.pid},
            attempt=attempt,
            restarts=self.record.restarts + (1 if restarted else 0),
            shim_create_time=self.record.shim_create_time or procfs.started_at(os.getpid()),
            boot_time=procfs.booted_at(),
            pid=run.pid,
            pid_create_time=run.create_time(),
            started_at=self.clock.time(),
            **(FORGOTTEN_BY_A_RUN if restarted else FORGOTTEN_BY_A_START),
        )
        if failure is not None:
            self._on(Happening.JUDGED_FAILED, failure)

    def _restart_in_place(self, asked: Spec) -> None:
        """A person's restart: end the run politely, keep every client (their requests in flight get a
        retryable error, new ones wait), and start the spec asked last now (`Requested._joined`)."""
        run = self.run_
        detail = "it is being restarted (mcpctl restart); send the request again"
        # First: a server told to exit may still answer what it had (SDK servers: "Connection closed").
        self.session.detach(Failure.of(ErrorType.CONNECTION_LOST, name=self.spec.name, detail=detail))
        if run is not None and self.record.state != ServerState.BACKOFF:  # in a backoff it has ended already
            self._enter(ServerState.STARTING)  # what `status` says meanwhile: it serves nobody until the next run
            run.end_tree(graceful=True, meanwhile=self._restarting)
        if (spec := self._joined(asked)) is None:
            return  # a stop asked while the old tree ended won: the shim has finished
        details = {"pid": self.record.pid, "code": run.exit_code if run else None, "config_hash": spec.config_hash}
        self.ledger.event("restart", details)
        log(f"restarting in place (pid {self.record.pid}), clients kept")
        self.take(spec)
        self.ledger.amend(config_hash=spec.config_hash)  # what it runs now, for apply and drift
        self._start_run(manual=True)

    def _serve(self, ready: Ready) -> None:
        self.ready_since, now = self.clock.monotonic(), self.clock.time()
        elapsed = now - (self.record.started_at or now)
        log(f"ready in {elapsed:.2f}s")
        counters = {"consecutive_failures": 0} if self.manual else {}  # a person's successful start resets
        self._enter(
            ServerState.READY,
            event="ready",
            details={"attempt": self.record.attempt, "elapsed_s": round(elapsed, 3)},
            report=Report.READY,
            ready_at=now,
            last_error=None,  # it serves: what ended an earlier run is history now (last_failure)
            **ready.record_changes(),  # server_info (name, version, protocol era), and a pid that moved
            **counters,
        )
        self.watch.begin(self.spec, self.session.attach(ready, self.run_))

    def _sample(self) -> Failure | None:
        """Record a due sample and its alerts; a firing alert whose actions include restart asks for one."""
        found = self.watch.findings(self.record.state)
        if found is None:
            return None
        restart = announce(found, self.spec.name, self.ledger.event)
        self.ledger.write(metrics=found.sample.to_json(), alerts=self.watch.evaluator.active())
        return restart

    def _mark_unhealthy(self, health: Health) -> None:
        log(f"unhealthy: {health.detail} ({health.consecutive_failures} in a row)")
        details = {"detail": health.detail, "consecutive_failures": health.consecutive_failures}
        self._enter(ServerState.UNHEALTHY, event="unhealthy", details=details, health=health.to_json())
        if self.spec.restart_on_unhealthy:
            detail = f"{health.detail} ({health.consecutive_failures} times in a row)"
            self._end_run(Failure.of(ErrorType.UNHEALTHY, name=self.spec.name, detail=detail))

    def _end_run(self, failure: Failure | None) -> None:
        """A run is over (failed start, crash, or clean exit): end its tree, count, and follow the policy."""
        run, failure = self.run_, self._redacted(failure)
        if run is not None and run.pid is not None and run.exit_code is None and failure is not None:
            log(f"ending the server: {failure.message}")  # so its "killed by SIGTERM" reads as the shim's doing
        if run is not None:
            run.end_tree(graceful=failure is None or failure.retryable, meanwhile=self._meanwhile)
        code = run.exit_code if run is not None else None
        gone = failure.message if failure is not None else f"{self.spec.name} exited ({classify_exit(code or 0)})"
        self.session.detach(Failure.of(ErrorType.CONNECTION_LOST, name=self.spec.name, detail=gone))
        failures = self.record.consecutive_failures + (1 if failure else 0)
        spec = self.spec
        retryable = failure.retryable if failure else True
        decision = policy.after_exit(spec.restart, failure is not None, retryable, failures, spec.max_failures)
        self.ledger.amend(
            last_exit_code=code,
            last_error=failure,  # a clean exit leaves no current error
            consecutive_failures=failures,
            total_failures=self.record.total_failures + (1 if failure else 0),
        )
        if code is not None or failure is not None:
            killed_by = signals.signal_name(-code) if code is not None and code < 0 else None
            details = {"code": code, "signal": killed_by, "error": failure.type.value if failure else None}
            self.ledger.event("exited", details)
        if decision.restart:
            self._back_off(failure, failures)
        elif decision.crash_loop and failure is not None:
            loops = failures - spec.max_failures + 1
            self.ledger.amend(**self._cooldown(policy.cooldown(loops, spec.cooldown_base, spec.cooldown_max)))
            detail = LAST_FAILURE.format(detail=failure.message)
            self.finish(
                decision.final, Failure.of(ErrorType.CRASH_LOOP, name=spec.name, failures=failures, detail=detail)
            )
        else:
            self.finish(decision.final, failure)

    def _back_off(self, failure: Failure | None, failures: int) -> None:
        spec = self.spec
        delay = policy.backoff_delay(failures, spec.backoff_base, spec.backoff_max) if failure else spec.backoff_base
        self.retry_at = self.clock.monotonic() + delay
        log(f"retrying in {delay:.1f}s (failure {failures} of {spec.max_failures})" if failure
            else f"restarting in {delay:.1f}s")  # fmt: skip
        self._enter(
            ServerState.BACKOFF,
            event="backoff",
            details={"delay_s": round(delay, 3), "consecutive_failures": failures},
            report=Report.FAILED if failure else Report.STOPPED,
            pid=None,
            pid_create_time=None,
            **self._cooldown(delay),
        )
        self.manual = False

    def _cooldown(self, seconds: float) -> dict[str, float]:
        return {"cooldown_until": self.clock.time() + seconds, "cooldown_until_mono": self.clock.monotonic() + seconds}

    def finish(self, final: ServerState, failure: Failure | None) -> Finished:
        """The shim's end: stop what runs, write the final record, report, and exit."""
        if self.record.state in RUNNING:
            self._enter(ServerState.STOPPING)
        run = self.run_
        if run is not None and run.exit_code is None and run.pid is not None:
            run.end_tree(graceful=True, meanwhile=self._meanwhile)
        changes: dict[str, Any] = {}
        if run is not None and final == ServerState.STOPPED and run.exit_code is not None:
            changes["last_exit_code"] = run.exit_code
        failure = self._redacted(failure)
        if failure is None or failure.type != ErrorType.CRASH_LOOP:  # a crash loop keeps its cooldown
            changes.update(NO_COOLDOWN)
        log(final + (f": {failure.message}" if failure else ""))
        self._enter(
            final,
            event=final,
            details={"error": failure.to_json() if failure else None},
            report=Report(final),
            pid=None if final == ServerState.STOPPED else self.record.pid,
            stopped_at=self.clock.time(),
            last_error=failure,  # a clean stop leaves none: the history keeps the last (last_failure)
            **changes,
        )
        self.mux.close(failure or Failure.of(ErrorType.NOT_RUNNING, name=self.spec.name))
        for listening in (self.socket, self.control):
            if listening is not None:
                listening.close()
        self.finished = Finished(0)
        return self.finished

    # -- waking and reaping ------------------------------------------------------------------

    def _next_wakeup(self) -> float:
        state = self.record.state
        if state == ServerState.STARTING and self.run_ is not None:
            return self.run_.next_wakeup()
        if state == ServerState.BACKOFF:
            return self.retry_at
        later = self.clock.monotonic() + 1.0
        if state in SERVING:
            later = self.watch.next_wakeup(later)
        if state == ServerState.READY and self.record.consecutive_failures:
            return min(later, self.ready_since + self.spec.reset_after)
        return later

    def _reap(self) -> None:
        for pid, status in self.reaped():
            run = self.run_
            if run is not None and pid == run.pid and run.exit_code is None:
                run.exited(status)
