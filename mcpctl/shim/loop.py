"""The per-server shim: supervises one MCP server for as long as it should run.

Started detached by the CLI as `python -m mcpctl.shim NAME`, with its spec as JSON on stdin, its
stdout a pipe on which it reports `locked` and then the outcome of the first start, and its stderr
the server's log file. It holds the server's instance lock for its whole life, is the only writer of
the server's state record and events while it lives, restarts the server by policy with backoff, and
answers control requests on a unix socket. It stays small: the stdlib and psutil, never the mcp SDK.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcpctl import alerts, protocol
from mcpctl import constants as C
from mcpctl.constants import ENV_HOME
from mcpctl.contract import Control, Report, Spec, updated
from mcpctl.errors import ErrorType, Failure, classify_exit
from mcpctl.events import append_event
from mcpctl.health import Pinger
from mcpctl.logfile import LogWriter, server_lines
from mcpctl.metrics import Sampler
from mcpctl.paths import Paths
from mcpctl.redaction import Redactor
from mcpctl.shim import policy
from mcpctl.shim.listener import Connection, SocketServer
from mcpctl.shim.log import log, retune_log, use_log
from mcpctl.shim.monitor import Monitor, restarts_within, run_alert_command
from mcpctl.shim.mux import Multiplexer
from mcpctl.shim.run import Ready, ServerRun
from mcpctl.shim.signals import become_subreaper, signal_name
from mcpctl.state import CorruptState, InstanceLock, StateRecord, read_record, write_record
from mcpctl.states import RUNNING, SERVING, ServerState

if TYPE_CHECKING:
    from mcpctl.shim.http_relay import HttpRelay


class Shim:
    def __init__(self, paths: Paths, spec: Spec) -> None:
        self.paths = paths
        self.spec = spec
        self.redact = Redactor(spec.secrets)
        self.instance_id = os.urandom(16).hex()
        self.selector = selectors.DefaultSelector()
        self.record = StateRecord(name=spec.name)
        self.run_: ServerRun | None = None
        self.socket: SocketServer | None = None
        self.mux = Multiplexer(spec.name, self._on_request, wait_limit=spec.startup_timeout)
        self.connections = itertools.count(1)
        self.relay: HttpRelay | None = None  # an HTTP server's upstream, while it is ready
        self.stop_requested = False
        self.manual = True  # the current attempt was asked for by a person (start, --force), not the policy
        self.retry_at = 0.0  # monotonic: when a server in backoff is started again
        self.ready_since = 0.0  # monotonic: when the current run became ready
        self.monitor: Monitor | None = None  # while a run is ready: pings, samples, alerts
        self.sampler: Sampler | None = None
        configured = alerts.rules(spec.alerts)
        self.alerts = alerts.Evaluator(configured or alerts.defaults(spec.health_interval))
        self.restart_times: list[float] = []  # monotonic, for restarts_per_hour
        self.log_offset = 0
        self.reported = False

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self._log_environment()
        previous = self._previous_record()
        self.record = previous.but(
            instance_id=self.instance_id,
            shim_pid=os.getpid(),
            shim_create_time=None,
            transport=self.spec.transport,
            config_hash=self.spec.config_hash,
            stopped_at=None,
        )
        outcome = self._begin_attempt(manual=True)
        if outcome is not None:
            return outcome
        self.socket = SocketServer(self.paths.socket(self.spec.name), self.selector, self._on_connection)
        return self._loop()

    def _log_environment(self) -> None:
        sources = self.spec.env_sources
        shell = sum(1 for source in sources.values() if source == "shell")
        named = ", ".join(f"{name} ({source})" for name, source in sorted(sources.items()) if source != "shell")
        log(f"environment: {shell} variable(s) from the shell" + (f"; {named}" if named else ""))

    def _previous_record(self) -> StateRecord:
        try:
            previous = read_record(self.paths.state_file(self.spec.name))
        except CorruptState as exc:
            log(f"previous state unreadable, starting a fresh record: {exc}")
            previous = None
        return previous or StateRecord(name=self.spec.name)

    def _begin_attempt(self, manual: bool) -> int | None:
        self.manual = manual
        self.monitor = None
        self.log_offset = _log_size()
        self.run_ = ServerRun(self.spec, self.instance_id, self.selector, self.redact, str(self._log_path))
        failure = self.run_.spawn()  # first: the server boots while the shim imports psutil below
        from mcpctl import process

        pid = self.run_.pid
        restarted = not manual
        if restarted:
            self.restart_times = [*restarts_within(self.restart_times), time.monotonic()]
        self.record = self.record.but(
            state=ServerState.STARTING,
            attempt=self.record.attempt + 1,
            restarts=self.record.restarts + (1 if restarted else 0),
            shim_create_time=self.record.shim_create_time or process.create_time(os.getpid()),
            boot_time=process.boot_time(),
            pid=pid,
            pid_create_time=process.create_time(pid) if pid else None,
            started_at=time.time(),
            ready_at=None,
            health=None,
            metrics=None,
            last_exit_code=None,
            cooldown_until=None,
            cooldown_until_mono=None,
        )
        self._save()
        self._event("restarted" if restarted else "started", attempt=self.record.attempt, pid=pid)
        return self._run_ended(failure) if failure is not None else None

    def _loop(self) -> int:
        while True:
            wakeup = min(self._next_wakeup(), self.mux.next_deadline())
            timeout = max(0.0, min(wakeup - time.monotonic(), 1.0))
            for key, mask in self.selector.select(timeout):
                key.data(mask)
            self._reap()
            self.mux.expire(time.monotonic())
            outcome = self._step()
            if outcome is not None:
                return outcome

    def _step(self) -> int | None:
        """Decide what the world now means: ready, failed, exited, time to retry, or asked to stop."""
        if self.stop_requested:
            return self._finish("stopped", None)
        run, state = self.run_, self.record.state
        if state == ServerState.STARTING and run is not None:
            if run.exit_code is not None:
                run.drain()  # its last words may be the handshake answer or the ready line
            verdict = run.judge()
            if isinstance(verdict, Ready):
                self._became_ready(verdict)
            elif isinstance(verdict, Failure):
                return self._run_ended(verdict)
        elif state in SERVING and run is not None and run.exit_code is not None:
            run.drain()
            code = run.exit_code
            uptime = _duration(time.monotonic() - self.ready_since)
            crash = Failure.of(
                ErrorType.CRASHED, name=self.spec.name, exit=classify_exit(code), uptime=uptime, log=self._log_path
            )
            return self._run_ended(crash if code != 0 else None)
        elif state in SERVING:
            self._maybe_reset()
            restart = self._check_resources()
            return self._run_ended(restart) if restart is not None else self._check_health()
        elif state == ServerState.BACKOFF and time.monotonic() >= self.retry_at:
            return self._begin_attempt(manual=self.manual)
        return None

    def _next_wakeup(self) -> float:
        state = self.record.state
        if state == ServerState.STARTING and self.run_ is not None:
            return self.run_.next_wakeup()
        if state == ServerState.BACKOFF:
            return self.retry_at
        later = time.monotonic() + 1.0
        if state in SERVING and self.monitor is not None:
            later = min(later, self.monitor.next_wakeup())
        if state == ServerState.READY and self.record.consecutive_failures:
            return min(later, self.ready_since + self.spec.reset_after)
        return later

    def _became_ready(self, ready: Ready) -> None:
        self.ready_since = time.monotonic()
        counters = {"consecutive_failures": 0} if self.manual else {}  # a person's successful start resets
        self.record = self.record.but(
            state=ServerState.READY, ready_at=time.time(), server_info=ready.server_info, **counters
        )
        self._save()
        elapsed = (self.record.ready_at or 0) - (self.record.started_at or 0)
        log(f"ready in {elapsed:.2f}s")
        self._event("ready", attempt=self.record.attempt, elapsed_s=round(elapsed, 3))
        self._report("ready")
        send = self._upstream(ready)
        spec = self.spec
        pinger = Pinger(send, spec.health_interval, spec.health_timeout) if send is not None else None
        self.sampler = self.sampler or Sampler()
        metrics_path = self.paths.server_dir(spec.name) / "metrics.jsonl"
        self.monitor = Monitor(
            self.sampler, self.alerts, metrics_path, spec.metrics_interval, pinger, self.mux.take_counts
        )
        if send is not None:
            self.mux.attach(send, ready.result)

    def _upstream(self, ready: Ready) -> Callable[[dict[str, Any]], None] | None:
        """How messages reach the server now that it is ready: its stdin, or POSTs to its URL.
        None when it does not speak MCP (readiness log or alive)."""
        if self.spec.url:
            from mcpctl.shim.http_relay import HttpRelay

            self.relay = HttpRelay(
                self.spec.name, self.spec.url, ready.session, self.selector, self._from_server, self.redact
            )
            return self.relay.send
        if self.run_ is not None and self.spec.readiness == "mcp":
            self.run_.on_message = self._from_server
            return self.run_.send
        return None

    def _from_server(self, message: dict[str, Any]) -> None:
        if not self.mux.from_upstream(message) and self.monitor is not None:
            self.monitor.on_response(message)  # not a client's: the answer to the shim's own ping

    def _check_resources(self) -> Failure | None:
        """Record a due sample and its alerts; a firing alert whose actions include restart asks for one."""
        if self.monitor is None:
            return None
        found = self.monitor.findings(float(len(restarts_within(self.restart_times))), self.record.state)
        if found is None:
            return None
        if found.new_zombies:
            log(f"zombie processes in the tree: {', '.join(map(str, found.new_zombies))}")
            self._event("zombie", pids=list(found.new_zombies))
        restart: Failure | None = None
        for change in found.changes:
            rule, kind = change.rule, "alert_fired" if change.fired else "alert_resolved"
            log(f"alert {'fired' if change.fired else 'resolved'} ({rule.severity}): {change.message}")
            self._event(kind, alert=rule.name, severity=rule.severity, message=change.message)
            if rule.exec:
                details = {"server": self.spec.name, "event": kind, "alert": rule.name, "severity": rule.severity}
                run_alert_command(rule.exec, {**details, "message": change.message})
            if change.fired and "restart" in rule.actions:
                restart = Failure.of(ErrorType.UNHEALTHY, name=self.spec.name, detail=f"alert {change.message}")
        self.record = self.record.but(metrics=found.sample.to_json(), alerts=self.alerts.active())
        self._save()
        return restart

    def _check_health(self) -> int | None:
        health = self.monitor.health() if self.monitor is not None else None
        if health is None:
            return None
        self.record = self.record.but(health=health.to_json())
        unhealthy = not health.ok and health.consecutive_failures >= self.spec.unhealthy_after
        if unhealthy and self.record.state == ServerState.READY:
            self.record = self.record.but(state=ServerState.UNHEALTHY)
            log(f"unhealthy: {health.detail} ({health.consecutive_failures} in a row)")
            self._event("unhealthy", detail=health.detail, consecutive_failures=health.consecutive_failures)
            if self.spec.restart_on_unhealthy:
                self._save()
                detail = f"{health.detail} ({health.consecutive_failures} times in a row)"
                return self._run_ended(Failure.of(ErrorType.UNHEALTHY, name=self.spec.name, detail=detail))
        elif health.ok and self.record.state == ServerState.UNHEALTHY:
            self.record = self.record.but(state=ServerState.READY)
            self._event("healthy", latency_ms=health.latency_ms)
        self._save()
        return None

    def _maybe_reset(self) -> None:
        if self.record.consecutive_failures and time.monotonic() - self.ready_since >= self.spec.reset_after:
            self.record = self.record.but(consecutive_failures=0)
            self._save()
            self._event("reset", after_s=self.spec.reset_after)

    def _run_ended(self, failure: Failure | None) -> int | None:
        """A run is over (failed start, crash, or clean exit): end its tree, count, and follow the policy."""
        run = self.run_
        if failure is not None:
            failure = Failure(failure.type, self.redact(failure.message), failure.hint)
        if run is not None:
            run.end_tree(graceful=failure is None or failure.retryable, reap=self._reap)
        code = run.exit_code if run is not None else None
        gone = failure.message if failure is not None else f"{self.spec.name} exited ({classify_exit(code or 0)})"
        self.mux.detach(Failure.of(ErrorType.CONNECTION_LOST, name=self.spec.name, detail=gone))
        if self.relay is not None:
            self.relay.close()
            self.relay = None
        failures = self.record.consecutive_failures + (1 if failure else 0)
        decision = policy.after_exit(
            self.spec.restart,
            failure is not None,
            failure.retryable if failure else True,
            failures,
            self.spec.max_failures,
        )
        self.record = self.record.but(
            last_exit_code=code,
            last_error=failure or self.record.last_error,
            consecutive_failures=failures,
            total_failures=self.record.total_failures + (1 if failure else 0),
        )
        if code is not None or failure is not None:
            killed_by = signal_name(-code) if code is not None and code < 0 else None
            self._event("exited", code=code, signal=killed_by, error=failure.type.value if failure else None)
        if decision.restart:
            self._back_off(failure, failures)
            return None
        final_failure = failure
        if decision.crash_loop and failure is not None:
            final_failure = Failure.of(
                ErrorType.CRASH_LOOP, name=self.spec.name, failures=failures, detail=f"last: {failure.message}"
            )
            self._cool_down(policy.cooldown(failures, self.spec.cooldown_base, self.spec.cooldown_max))
        return self._finish(decision.final, final_failure)

    def _back_off(self, failure: Failure | None, failures: int) -> None:
        spec = self.spec
        delay = policy.backoff_delay(failures, spec.backoff_base, spec.backoff_max) if failure else spec.backoff_base
        self.retry_at = time.monotonic() + delay
        self.record = self.record.but(state=ServerState.BACKOFF, pid=None, pid_create_time=None)
        self._cool_down(delay)
        log(
            f"retrying in {delay:.1f}s (failure {failures} of {spec.max_failures})"
            if failure
            else f"restarting in {delay:.1f}s"
        )
        self._event("backoff", delay_s=round(delay, 3), consecutive_failures=failures)
        self._report("failed" if failure else "stopped")
        self.manual = False

    def _cool_down(self, seconds: float) -> None:
        self.record = self.record.but(
            cooldown_until=time.time() + seconds, cooldown_until_mono=time.monotonic() + seconds
        )
        self._save()

    def _finish(self, final: str, failure: Failure | None) -> int:
        """The shim's end: stop what runs, write the final record, report, and exit."""
        if self.record.state in RUNNING:
            self.record = self.record.but(state=ServerState.STOPPING)
            self._save()
        if self.run_ is not None and self.run_.exit_code is None and self.run_.proc is not None:
            self.run_.end_tree(graceful=True, reap=self._reap)
        if self.run_ is not None and final == "stopped" and self.run_.exit_code is not None:
            self.record = self.record.but(last_exit_code=self.run_.exit_code)
        if failure is not None:
            failure = Failure(failure.type, self.redact(failure.message), failure.hint)
        crash_loop = failure is not None and failure.type == ErrorType.CRASH_LOOP
        cooldown = {} if crash_loop else {"cooldown_until": None, "cooldown_until_mono": None}
        self.record = self.record.but(
            state=final,
            pid=None if final == "stopped" else self.record.pid,
            stopped_at=time.time(),
            last_error=failure if failure is not None else self.record.last_error,
            **cooldown,
        )
        self._save()
        log(final + (f": {failure.message}" if failure else ""))
        self._event(final, error=failure.to_json() if failure else None)
        self._report(final)
        self.mux.close(failure or Failure.of(ErrorType.NOT_RUNNING, name=self.spec.name))
        if self.socket:
            self.socket.close()
        return 0

    # -- requests and signals ----------------------------------------------------------------

    def _on_connection(self, sock: Any) -> None:
        conn = Connection(sock, next(self.connections), self.selector, self._on_client_message, self.mux.hangup)
        self.mux.add(conn)

    def _on_client_message(self, conn: Connection, message: dict[str, Any]) -> None:
        peer = self.mux.peers.get(conn.number)
        if peer is not None:
            self.mux.from_client(peer, message)

    def _on_request(self, message: dict[str, Any]) -> dict[str, Any]:
        method, request_id = message.get("method"), message.get("id")
        if method == Control.STATUS:
            self._save()  # rewrites the file too, in case a reader found it damaged
            return _result(request_id, self.record.to_json())
        if method == Control.STOP:
            self.stop_requested = True
            if self.record.state in RUNNING:
                self.record = self.record.but(state=ServerState.STOPPING)
                self._save()
            return _result(request_id, {"stopping": True})
        if method == Control.RETRY:  # `start --force` during a backoff: try now, as a person's start
            if self.record.state == ServerState.BACKOFF:
                self.retry_at = 0.0
                self.manual = True
                return _result(request_id, {"attempt": self.record.attempt + 1})
            return _result(request_id, {"attempt": self.record.attempt})
        if method == Control.UPDATE:  # `mcpctl apply`: settings that need no restart
            return self._update(request_id, message.get("params"))
        return protocol.method_not_found(request_id, str(method))

    def _update(self, request_id: object, params: object) -> dict[str, Any]:
        """Take new health, alert and restart settings; the server keeps running (same pid)."""
        try:
            self.spec, changed = updated(self.spec, params)
        except ValueError as exc:
            return protocol.error_response(request_id, -32602, f"invalid settings: {exc}")
        spec = self.spec
        self.alerts = self.alerts.with_rules(alerts.rules(spec.alerts) or alerts.defaults(spec.health_interval))
        if self.monitor is not None:
            self.monitor.retune(self.alerts, spec.metrics_interval, spec.health_interval, spec.health_timeout)
        retune_log(spec.log_max_bytes, spec.log_backups)
        self.record = self.record.but(config_hash=spec.config_hash)
        self._save()
        log(f"settings updated in place: {', '.join(changed) or 'none changed'}")
        self._event("updated", fields=changed, config_hash=spec.config_hash)
        return _result(request_id, {"config_hash": spec.config_hash, "updated": changed})

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            self.stop_requested = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # no terminal: a hangup is not ours to act on
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector through the wakeup fd
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        self.selector.register(wake_read, selectors.EVENT_READ, lambda _mask: _drain(wake_read))

    # -- helpers -----------------------------------------------------------------------------

    def _reap(self) -> None:
        """Reap every child: the server and whatever the subreaper inherited."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.run_ is not None and pid == self.run_.pid and self.run_.exit_code is None:
                self.run_.exited(status)

    def _save(self) -> None:
        write_record(self.paths.state_file(self.spec.name), self.record)

    def _event(self, kind: str, **details: Any) -> None:
        append_event(self.paths.events_file(self.spec.name), kind, details)

    def _report(self, event: str) -> None:
        """Tell the CLI that started us how the first start went; after that, nobody listens."""
        if self.reported:
            return
        self.reported = True
        tail = self._stderr_tail() if event != "ready" else []
        payload = {"event": event, "record": self.record.to_json(), "stderr_tail": tail}
        with contextlib.suppress(OSError):
            os.write(1, json.dumps(payload).encode() + b"\n")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)

    @property
    def _log_path(self) -> Path:
        return self.paths.log_file(self.spec.name)

    def _stderr_tail(self) -> list[str]:
        return server_lines(self._log_path, self.log_offset, C.STDERR_TAIL_LINES)


def _result(request_id: object, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _log_size() -> int:
    try:
        return os.fstat(2).st_size
    except OSError:
        return 0


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m mcpctl.shim NAME  (spec as JSON on stdin; started by mcpctl)", file=sys.stderr)
        return 2
    spec = Spec(**json.loads(sys.stdin.buffer.read()))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    paths = Paths(Path(os.environ[ENV_HOME]))
    paths.ensure_server(spec.name)
    use_log(LogWriter(paths.log_file(spec.name), spec.log_max_bytes, spec.log_backups))
    lock = InstanceLock(paths.instance_lock(spec.name))
    if not lock.acquire():
        os.write(1, json.dumps({"event": Report.BUSY}).encode() + b"\n")
        return 0
    os.write(1, json.dumps({"event": Report.LOCKED, "pid": os.getpid()}).encode() + b"\n")
    become_subreaper()
    shim = Shim(paths, spec)
    try:
        return shim.run()
    except Exception:  # noqa: BLE001 - a bug in the shim must still end the tree and say why
        import traceback

        log("internal error:\n" + traceback.format_exc())
        return shim._finish(
            "failed", Failure.of(ErrorType.INTERNAL, detail="the shim hit an internal error (see the log)")
        )
