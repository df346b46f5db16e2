"""The per-server shim: owns one MCP server as its child, for as long as the server should run.

Started detached by the CLI as `python -m mcpctl.shim NAME`, with its spec as JSON on stdin, its
stdout a pipe on which it reports `locked` and then `ready` or `failed`, and its stderr the server's
log file. It holds the server's instance lock for its whole life, is the only writer of the server's
state record while it lives, and answers control requests on a unix socket. It must stay small: the
stdlib and psutil only, never the mcp SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpctl import protocol
from mcpctl.constants import ENV_HOME, ENV_INSTANCE, STDERR_TAIL_LINES, STDIN_CLOSE_GRACE
from mcpctl.errors import ErrorType, Failure
from mcpctl.paths import Paths
from mcpctl.redaction import Redactor
from mcpctl.shim_io import ControlServer, LineReader, become_subreaper, log, signal_name, stderr_tail
from mcpctl.state import CorruptState, InstanceLock, StateRecord, read_record, write_record

_HTTP_PROBE_INTERVAL = 0.2


@dataclass(frozen=True)
class Spec:
    """What the CLI tells the shim to run; env holds secrets, so it never reaches disk or argv."""

    name: str
    command: str | None
    args: list[str]
    env: dict[str, str]
    cwd: str | None
    url: str | None
    startup_timeout: float
    stop_timeout: float
    config_hash: str
    secrets: list[str] = field(default_factory=list)

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"


class Shim:
    def __init__(self, paths: Paths, spec: Spec) -> None:
        self.paths = paths
        self.spec = spec
        self.redact = Redactor(spec.secrets)
        self.instance_id = os.urandom(16).hex()
        self.record = StateRecord(name=spec.name)
        self.child: subprocess.Popen[bytes] | None = None
        self.exit_status: int | None = None
        self.stdout: LineReader | None = None
        self.selector = selectors.DefaultSelector()
        self.control: ControlServer | None = None
        self.stop_requested = False
        self.deadline = 0.0
        self.next_probe = 0.0
        self.log_offset = 0
        self.reported = False
        self.failure: Failure | None = None  # a startup failure seen while handling an event
        self.last_probe_error = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        started_at = time.time()
        self.deadline = time.monotonic() + self.spec.startup_timeout
        self._install_signals()
        # Spawn first: the server boots while the shim finishes its own start-up (psutil: ~10 ms).
        failure = self._spawn()
        from mcpctl import process

        self.record = self._previous_record().but(
            state="starting",
            instance_id=self.instance_id,
            shim_pid=os.getpid(),
            shim_create_time=process.create_time(os.getpid()),
            pid=self.child.pid if self.child else None,
            pid_create_time=process.create_time(self.child.pid) if self.child else None,
            transport=self.spec.transport,
            config_hash=self.spec.config_hash,
            started_at=started_at,
            ready_at=None,
            stopped_at=None,
            last_exit_code=None,
            last_error=None,
        )
        self._save()
        self.control = ControlServer(self.paths.socket(self.spec.name), self.selector, self._on_request)
        if failure:
            return self._finish("failed", failure)
        return self._loop()

    def _previous_record(self) -> StateRecord:
        try:
            previous = read_record(self.paths.state_file(self.spec.name))
        except CorruptState as exc:
            log(f"previous state unreadable, starting a fresh record: {exc}")
            previous = None
        return previous or StateRecord(name=self.spec.name)

    def _spawn(self) -> Failure | None:
        spec = self.spec
        if not spec.command:
            return None  # a remote HTTP server: nothing to own, only to reach
        if spec.cwd and not os.path.isdir(spec.cwd):
            return Failure(ErrorType.SPAWN_FAILED, f"working directory {spec.cwd} does not exist", "fix cwd")
        env = {**spec.env, ENV_INSTANCE: self.instance_id}
        self.log_offset = _log_size()
        log(f"spawning {spec.command} (cwd {spec.cwd or os.getcwd()})")
        stdio = spec.transport == "stdio"
        try:
            self.child = subprocess.Popen(
                [spec.command, *spec.args],
                stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdio else sys.stderr.fileno(),
                stderr=sys.stderr.fileno(),
                cwd=spec.cwd,
                env=env,
                start_new_session=True,  # its own process group, so the whole group can be signalled
            )
        except FileNotFoundError:
            hint = "install it, or give the full path in `command`"
            return Failure(ErrorType.COMMAND_NOT_FOUND, f"command not found: {spec.command}", hint)
        except PermissionError:
            return Failure(ErrorType.PERMISSION_DENIED, f"permission denied running {spec.command}", "chmod +x it")
        except OSError as exc:
            return Failure(ErrorType.SPAWN_FAILED, f"cannot run {spec.command}: {exc.strerror}")
        if stdio:
            assert self.child.stdout is not None
            self.stdout = LineReader(self.child.stdout.fileno())
            self.selector.register(self.child.stdout, selectors.EVENT_READ, self._on_stdout)
            self._send(protocol.initialize_request())
        return None

    def _loop(self) -> int:
        while True:
            timeout = max(0.0, min(self._next_timer() - time.monotonic(), 1.0))
            for key, _ in self.selector.select(timeout):
                key.data()
            self._reap()
            outcome = self._check()
            if outcome is not None:
                return outcome

    def _check(self) -> int | None:
        """Decide what the world now means: ready, failed, exited, or asked to stop."""
        state = self.record.state
        if self.failure is not None:
            return self._finish("failed", self.failure)
        if self.stop_requested:
            return self._finish("stopped", None)
        if self.exit_status is not None:
            if self.stdout is not None and not self.stdout.closed:
                # Take what it wrote before it died; a descendant may hold the pipe open forever.
                self._on_stdout()
                state = self.record.state
            code = os.waitstatus_to_exitcode(self.exit_status)
            if state == "starting":
                return self._finish("failed", self._startup_exit_failure(code), code)
            return self._finish("stopped" if code == 0 else "failed", self._crash_failure(code), code)
        if state == "starting" and self.spec.transport == "http" and time.monotonic() >= self.next_probe:
            self._probe_http()
            return None
        if state == "starting" and time.monotonic() >= self.deadline:
            last = f" (last attempt: {self.last_probe_error})" if self.last_probe_error else ""
            failure = Failure(
                ErrorType.HANDSHAKE_TIMEOUT,
                f"{self.spec.name} did not complete the MCP initialize handshake within "
                f"{self.spec.startup_timeout:g}s{last}",
                "raise startup_timeout if the server is slow to start (npx cold starts can take a minute)",
            )
            return self._finish("failed", failure)
        return None

    def _next_timer(self) -> float:
        if self.record.state != "starting":
            return time.monotonic() + 1.0
        if self.spec.transport == "http":
            return min(self.deadline, self.next_probe)
        return self.deadline

    def _ready(self, result: dict[str, Any]) -> None:
        info = result.get("serverInfo")
        info = info if isinstance(info, dict) else {}
        self.record = self.record.but(
            state="ready",
            ready_at=time.time(),
            consecutive_failures=0,
            server_info={
                "name": str(info.get("name", "")),
                "version": str(info.get("version", "")),
                "protocol_version": str(result.get("protocolVersion", "")),
            },
        )
        self._save()
        elapsed = self.record.ready_at - (self.record.started_at or 0) if self.record.ready_at else 0
        log(f"ready in {elapsed:.2f}s (protocol {result.get('protocolVersion')})")
        self._report({"event": "ready", "record": self.record.to_json()})

    def _finish(self, final: str, failure: Failure | None, code: int | None = None) -> int:
        """End the server's whole tree, write the final record, report, and let the shim exit."""
        if self.record.state in ("starting", "ready"):
            self.record = self.record.but(state="stopping")
            self._save()
        graceful = failure is None or failure.type == ErrorType.CRASHED
        self._end_tree(graceful)
        if code is None and self.exit_status is not None:
            code = os.waitstatus_to_exitcode(self.exit_status)
        failed = failure is not None and final == "failed"
        if failure is not None:
            failure = Failure(failure.type, self.redact(failure.message), failure.hint)
        self.record = self.record.but(
            state=final,
            stopped_at=time.time(),
            last_exit_code=code,
            last_error=failure if failure is not None else self.record.last_error,
            consecutive_failures=self.record.consecutive_failures + 1 if failed else self.record.consecutive_failures,
            total_failures=self.record.total_failures + 1 if failed else self.record.total_failures,
        )
        self._save()
        log(f"{final}" + (f": {failure.message}" if failure else ""))
        tail = (
            [
                self.redact(line)
                for line in stderr_tail(self.paths.log_file(self.spec.name), self.log_offset, STDERR_TAIL_LINES)
            ]
            if failure
            else []
        )
        self._report({"event": final, "record": self.record.to_json(), "stderr_tail": tail})
        if self.control:
            self.control.close()
        return 0

    def _end_tree(self, graceful: bool) -> None:
        """Close stdin and wait; SIGTERM the group and every tagged descendant; SIGKILL what is left."""
        child = self.child
        if child is not None and child.stdin is not None and not child.stdin.closed:
            with contextlib.suppress(OSError):
                child.stdin.close()
        # Closing stdin is how a stdio server is asked to exit; an HTTP server only gets signals.
        if child is not None and self.exit_status is None and graceful and self.spec.transport == "stdio":
            deadline = time.monotonic() + min(STDIN_CLOSE_GRACE, self.spec.stop_timeout)
            while self.exit_status is None and time.monotonic() < deadline:
                time.sleep(0.01)
                self._reap()
        from mcpctl import process

        if child is not None:
            process.signal_group(child.pid, signal.SIGTERM)
        tree = self._tree()
        survivors = process.end_processes(tree, self.spec.stop_timeout if graceful else 0.5, self._reap)
        if child is not None:
            process.signal_group(child.pid, signal.SIGKILL)
        for proc in survivors:
            log(f"pid {proc.pid} survived SIGKILL")
        self._reap()

    def _tree(self) -> list[Any]:
        import psutil

        from mcpctl import process

        procs = {p.pid: p for p in process.tagged(self.instance_id)}
        try:
            for p in psutil.Process().children(recursive=True):
                procs.setdefault(p.pid, p)
        except psutil.Error:
            pass
        return list(procs.values())

    # -- events ------------------------------------------------------------------------------

    def _on_stdout(self) -> None:
        assert self.stdout is not None
        lines = self.stdout.read()
        if self.stdout.closed and self.child is not None:
            self.selector.unregister(self.child.stdout)  # type: ignore[arg-type]
            self._wait_exit(2.0)
        for line in lines:
            self._on_message(line)

    def _on_message(self, line: bytes) -> None:
        if self.record.state != "starting" or self.failure is not None:
            return  # relaying MCP traffic to clients arrives with the multiplexer
        try:
            message = protocol.decode(line)
        except protocol.ProtocolError as exc:
            detail = self.redact(str(exc))
            hint = "the server must write only JSON-RPC to stdout; send logs to stderr"
            self._fail_now(Failure(ErrorType.PROTOCOL_ERROR, f"garbage on stdout during startup: {detail}", hint))
            return
        if message.get("id") == protocol.INIT_ID and "method" not in message:
            try:
                result = protocol.initialize_outcome(message)
            except protocol.ProtocolError as exc:
                self._fail_now(Failure(ErrorType.PROTOCOL_ERROR, self.redact(str(exc))))
                return
            self._send(protocol.initialized_notification())
            self._ready(result)
        elif "method" in message and "id" in message:
            self._send(protocol.method_not_found(message["id"], str(message["method"])))

    def _fail_now(self, failure: Failure) -> None:
        self.failure = self.failure or failure

    def _probe_http(self) -> None:
        from mcpctl.http_handshake import handshake

        assert self.spec.url is not None
        remaining = self.deadline - time.monotonic()
        try:
            result = handshake(self.spec.url, timeout=max(0.2, min(remaining, 5.0)))
        except (OSError, protocol.ProtocolError, ValueError) as exc:
            self.last_probe_error = str(exc)
            self.next_probe = time.monotonic() + _HTTP_PROBE_INTERVAL
            return
        self._ready(result)

    def _on_request(self, message: dict[str, Any]) -> dict[str, Any]:
        method = message.get("method")
        if method == "mcpctl/status":
            self._save()  # rewrites the file too, in case a reader found it damaged
            return {"jsonrpc": "2.0", "id": message.get("id"), "result": self.record.to_json()}
        if method == "mcpctl/stop":
            self.stop_requested = True
            if self.record.state in ("starting", "ready"):
                self.record = self.record.but(state="stopping")
                self._save()
            return {"jsonrpc": "2.0", "id": message.get("id"), "result": {"stopping": True}}
        return protocol.method_not_found(message.get("id"), str(method))

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
        self.selector.register(wake_read, selectors.EVENT_READ, lambda: _drain(wake_read))

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
            if self.child is not None and pid == self.child.pid:
                self.exit_status = status
                self.child.returncode = os.waitstatus_to_exitcode(status)
                log(f"server exited: {_describe_exit(self.child.returncode)}")

    def _wait_exit(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.exit_status is None and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.005)

    def _send(self, message: dict[str, Any]) -> None:
        if self.child is None or self.child.stdin is None:
            return
        try:
            self.child.stdin.write(protocol.encode(message))
            self.child.stdin.flush()
        except OSError:
            pass  # the server is gone; its exit is noticed by the reaper

    def _save(self) -> None:
        write_record(self.paths.state_file(self.spec.name), self.record)

    def _report(self, event: dict[str, Any]) -> None:
        """Tell the CLI that started us, if it still listens; after the outcome, stop listening."""
        if self.reported:
            return
        with contextlib.suppress(OSError):
            os.write(1, json.dumps(event).encode() + b"\n")
        if event["event"] != "locked":
            self.reported = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)

    def _stderr_tail(self) -> list[str]:
        lines = stderr_tail(self.paths.log_file(self.spec.name), self.log_offset, STDERR_TAIL_LINES)
        return [self.redact(line) for line in lines]

    def _startup_exit_failure(self, code: int) -> Failure:
        return Failure(
            ErrorType.EXITED_DURING_STARTUP,
            f"{self.spec.name} exited during startup ({_describe_exit(code)}) before completing initialize",
            f"run the command by hand to see why; its stderr is in {self.paths.log_file(self.spec.name)}",
        )

    def _crash_failure(self, code: int) -> Failure | None:
        if code == 0:
            return None
        uptime = time.time() - (self.record.ready_at or time.time())
        return Failure(
            ErrorType.CRASHED,
            f"{self.spec.name} exited unexpectedly ({_describe_exit(code)}) after {uptime:.0f}s",
            f"see its log: mcpctl logs {self.spec.name}, or {self.paths.log_file(self.spec.name)}",
        )


def _describe_exit(code: int) -> str:
    return f"killed by {signal_name(-code)}" if code < 0 else f"exit code {code}"


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
    lock = InstanceLock(paths.instance_lock(spec.name))
    if not lock.acquire():
        os.write(1, b'{"event": "busy"}\n')
        return 0
    os.write(1, json.dumps({"event": "locked", "pid": os.getpid()}).encode() + b"\n")
    become_subreaper()
    shim = Shim(paths, spec)
    try:
        return shim.run()
    except Exception:  # noqa: BLE001 - a bug in the shim must still end the tree and say why
        import traceback

        log("internal error:\n" + traceback.format_exc())
        return shim._finish("failed", Failure(ErrorType.INTERNAL, "the shim hit an internal error (see the log)"))


if __name__ == "__main__":
    sys.exit(main())
