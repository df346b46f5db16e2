"""One run of a server under the shim: spawn it, read its output, judge readiness, end its whole tree."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable

from mcpctl import procfs, protocol
from mcpctl.clock import SYSTEM_CLOCK, Clock
from mcpctl.constants import ENV_HOME, ENV_INSTANCE, ENV_TENANT, STDIN_CLOSE_GRACE
from mcpctl.contract import Spec
from mcpctl.errors import ErrorType, Failure, classify_exit, classify_spawn_error, classify_startup_exit
from mcpctl.hints import Any, Protocol
from mcpctl.shim import asks, ports, signals
from mcpctl.shim.channels import LineReader, Outbox, Oversize
from mcpctl.shim.era import Handshake
from mcpctl.shim.log import log, log_lines, log_size, server_text
from mcpctl.shim.ready import Ready, Severed, crash, too_large
from mcpctl.states import Readiness

__all__ = ["Ready", "Run", "RunFactory", "ServerRun", "crash"]  # Ready and crash: from their own module

_HTTP_PROBE_INTERVAL = 0.2


class Run(Protocol):
    """What the shim needs of one run of its server (ServerRun; a fake in the unit tests)."""

    exit_code: int | None  # set once the process has been reaped
    log_from: int  # where its current process's lines begin in the server's log
    on_message: Callable[[dict[str, Any]], None] | None  # where MCP traffic goes once ready

    @property
    def pid(self) -> int | None: ...
    def spawn(self) -> Failure | None: ...
    def create_time(self) -> float | None: ...
    def drain(self) -> None: ...
    def judge(self) -> Ready | Failure | None: ...
    def lost(self) -> Failure | None: ...
    def next_wakeup(self) -> float: ...
    def send(self, message: dict[str, Any]) -> None: ...
    def exited(self, status: int) -> None: ...
    def end_tree(self, graceful: bool, meanwhile: Callable[[float], None]) -> None: ...


Lines = Callable[[list[bytes | Oversize]], None]  # what a pipe's lines go to
# How the shim makes a run: (spec, instance id, selector, redact, log path, clock) -> Run.
RunFactory = Callable[[Spec, str, selectors.BaseSelector, Callable[[str], str], str, Clock], Run]


class ServerRun:
    """A single run of the server process. The shim makes a new one for every (re)start."""

    def __init__(
        self,
        spec: Spec,
        instance_id: str,
        selector: selectors.BaseSelector,
        redact: Callable[[str], str],
        log_path: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.spec = spec
        self.clock = clock
        self.log_path = log_path
        self.instance_id = instance_id
        # Tags in the server's environment, inherited by every descendant: which shim run owns it, and
        # which state dir (so `mcpctl doctor` finds what a dead shim left behind).
        self.tags = {ENV_INSTANCE: instance_id, ENV_HOME: os.environ.get(ENV_HOME, "")}
        self.selector = selector
        self.redact = redact
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.started = clock.monotonic()
        self.deadline = self.started + spec.startup_timeout
        self.met: Ready | None = None  # the readiness condition held (the process may still have died)
        self.problem: Failure | None = None  # a startup failure seen in the output
        self.readers: dict[int, LineReader] = {}
        self.next_probe = 0.0
        self.last_probe_error = ""
        self.pattern = re.compile(spec.ready_pattern) if spec.ready_pattern else None
        self.on_message: Callable[[dict[str, Any]], None] | None = None  # what the server says once ready
        self.stdin: Outbox | None = None
        self.hello = protocol.initialize_request()  # per-client runs send their client's own initialize
        self.tenant = ""  # the client whose own process this is (share = "per-client"); "": the shim's
        self.handshake: Handshake | None = None
        self.pinned = False  # to the legacy era: no server/discover probe (`era`)
        self.probe_blameless: str | None = None  # the config under which it failed to start even pinned
        self.last_words = ""  # the last line of output, for a failure that can quote it
        self.severed = Severed(spec.name, log_path)  # its pipes, if they ended its session while it lives
        self.log_from = log_size()  # where its process's lines begin in the log (a respawn's later)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def create_time(self) -> float | None:
        """The process's create time, which tells it apart from a later process with the same pid."""
        return procfs.started_at(self.proc.pid) if self.proc else None  # /proc on Linux: no psutil

    def spawn(self) -> Failure | None:
        spec = self.spec
        if not spec.command:
            return None  # a remote HTTP server: nothing to own, only to reach
        self.severed, self.log_from = Severed(spec.name, self.log_path), log_size()  # a respawn's own (pinned)
        if spec.cwd and not os.path.isdir(spec.cwd):
            return Failure.of(
                ErrorType.SPAWN_FAILED, name=spec.name, detail=f"working directory {spec.cwd} does not exist"
            )
        taken = ports.taken(spec.name, spec.url, spec.command, set()) if spec.url else None
        if taken is not None:
            return taken  # ours would die of EADDRINUSE while the other answered the handshake
        speaks_mcp = spec.transport == "stdio" and spec.readiness == Readiness.MCP
        log(f"spawning {spec.command} (cwd {spec.cwd or os.getcwd()}, readiness {spec.readiness})")
        try:
            self.proc = subprocess.Popen(
                [spec.command, *spec.args],
                stdin=subprocess.PIPE if spec.transport == "stdio" else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,  # through the shim: redacted, matched, never blocking the server
                cwd=spec.cwd,
                env={**spec.env, **self.tags, **({ENV_TENANT: self.tenant} if self.tenant else {})},
                start_new_session=True,  # its own process group, so the whole group can be signalled
            )
        except OSError as exc:
            return classify_spawn_error(exc, spec.name, spec.command)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        if speaks_mcp:
            self._watch(self.proc.stdout.fileno(), self._on_stdout, spec.max_message_bytes, self._stdout_closed)
        else:
            self._watch(self.proc.stdout.fileno(), self._on_output, protocol.MAX_LINE)
        self._watch(self.proc.stderr.fileno(), self._on_output, protocol.MAX_LINE)
        if self.proc.stdin is not None:
            limit = spec.max_message_bytes
            self.stdin = Outbox(self.proc.stdin.fileno(), self.selector, self._want_write, self._stdin_broke, limit)
        if speaks_mcp:
            probe = not self.pinned and not self.tenant  # a client's own process gets the client's own handshake
            self.handshake = Handshake(self.hello, probe, self.clock.monotonic())
            self.send(self.handshake.opening())
        return None

    def _watch(self, fd: int, handler: Lines, limit: int, closed: Callable[[], None] | None = None) -> None:
        """Hand `fd`'s lines to `handler` as they come; at its end, `closed()` after the last of them."""
        reader = LineReader(fd, limit)
        self.readers[fd] = reader

        def on_readable(_mask: int) -> None:
            lines = reader.read()
            if reader.closed:
                self.selector.unregister(fd)
                del self.readers[fd]
            handler(lines)
            if reader.closed and closed is not None:
                closed()

        self.selector.register(fd, selectors.EVENT_READ, on_readable)

    def drain(self) -> None:
        """Read what the pipes hold right now (a dead server's last words), without waiting for EOF."""
        for fd in list(self.readers):
            key = self.selector.get_map().get(fd)
            if key is not None:
                key.data(selectors.EVENT_READ)

    # -- output ------------------------------------------------------------------------------

    def _on_output(self, lines: list[bytes | Oversize]) -> None:
        text = [server_text(raw, self.redact) for raw in lines]
        log_lines(text)
        self.last_words = next((line.strip() for line in reversed(text) if line.strip()), self.last_words)
        if self.pattern is not None and self.met is None and any(self.pattern.search(line) for line in text):
            self.met = Ready({})

    def _on_stdout(self, lines: list[bytes | Oversize]) -> None:
        for line in lines:
            if isinstance(line, Oversize):
                self._too_large(line)
            elif self.met is None and self.problem is None:
                self._on_handshake_line(line)
            elif self.met is not None:
                self._after_ready(line)

    def _after_ready(self, line: bytes) -> None:
        """MCP traffic once ready: answers for clients and for the shim's pings, notifications, requests."""
        try:
            message = protocol.decode(line, self.redact)
        except protocol.ProtocolError as exc:
            log(f"ignored a line on stdout that is not JSON-RPC: {exc}")
            return
        if self.on_message is not None:
            self.on_message(message)
        elif "method" in message and "id" in message:
            self.send(asks.unanswerable(message["id"], str(message["method"])))

    def _too_large(self, line: Oversize) -> None:
        """A message past max_message_bytes, never parsed: logged, and, when its id can be told, an error
        to whoever waits for it (the client that asked, through the multiplexer, or the server)."""
        limit = self.spec.max_message_bytes
        request_id, is_request = protocol.sender_of(line.head, line.tail)
        said = f"the server sent a message of {line.size} bytes (id {request_id!r}), past the limit of {limit}"
        log(self.redact(said))
        error = protocol.too_large(request_id, line.size, limit, self.spec.name)
        if self.met is None and self.problem is None:
            self.problem = too_large(self.spec.name, limit, error["error"]["message"])
        elif is_request:
            self.send(error)
        elif request_id is not None and self.on_message is not None:
            self.on_message(error)

    def _on_handshake_line(self, line: bytes) -> None:
        assert self.handshake is not None
        try:
            message = protocol.decode(line, self.redact)
            outcome = self.handshake.answer(message)
        except protocol.ProtocolError as exc:
            problem = Failure.of(ErrorType.PROTOCOL_ERROR, name=self.spec.name, detail=self.redact(str(exc)))
            self.problem = Failure(problem.type, problem.message, getattr(exc, "hint", problem.hint))
            return
        if isinstance(outcome, tuple):
            self.met = Ready(outcome[1], era=outcome[0], config_hash=self.spec.config_hash)
            if self.pinned and self.proc is not None:
                self.met.moved = {"pid": self.proc.pid, "pid_create_time": self.create_time()}
            if outcome[0] == "legacy":
                self.send(protocol.initialized_notification())
        elif outcome is not None:
            self.send(outcome)
        elif "method" in message and "id" in message:
            self.send(asks.unanswerable(message["id"], str(message["method"])))

    def _stdout_closed(self) -> None:
        self.severed.stdout_closed(self.clock.monotonic(), self.met is not None)

    def _stdin_broke(self) -> None:
        assert self.stdin is not None
        self.severed.stdin_failed(self.clock.monotonic(), self.stdin)

    def lost(self) -> Failure | None:
        """Why the session is over though the process lives (`Severed`); None while it may go on."""
        return self.severed.lost(self.clock.monotonic()) if self.exit_code is None else None

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the server's stdin; a server that does not read never blocks the shim."""
        if self.stdin is not None:
            self.stdin.put(protocol.encode(message))  # a failure is `_stdin_broke`'s

    def _want_write(self, want: bool) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        if want:
            self.selector.register(fd, selectors.EVENT_WRITE, self._flush_stdin)
        else:
            self.selector.unregister(fd)

    # -- judgement ---------------------------------------------------------------------------

    def judge(self) -> Ready | Failure | None:
        """The one rule for a start: ready iff the readiness condition held and the process was alive
        at that moment. None while it is still undecided."""
        if self.exit_code is not None and self.met is None:
            if self.pinned:
                self.probe_blameless = self.spec.config_hash  # it dies pinned too: the probe is not why
            elif self.handshake and self.handshake.probing and self.probe_blameless != self.spec.config_hash:
                return self._spawn_pinned()
        if self.problem is not None:
            return self.problem
        if self.met is None and (lost := self.lost()) is not None:
            return lost
        if self.exit_code is not None:
            spec = self.spec
            return classify_startup_exit(spec.name, spec.command, self.exit_code, self.last_words, self.log_path)
        now = self.clock.monotonic()
        if self.met is None and self.handshake is not None and (fallback := self.handshake.tick(now)) is not None:
            self.send(fallback)
        if self.met is None and self.spec.readiness == Readiness.ALIVE and now - self.started >= self.spec.ready_after:
            self.met = Ready({})
        if self.met is None and self.spec.url and now >= self.next_probe:
            self._probe_http()
            if self.problem is not None:
                return self.problem
        if self.met is not None:
            return self.met
        if now >= self.deadline:
            last = f" (last attempt: {self.last_probe_error})" if self.last_probe_error else ""
            return Failure.of(
                ErrorType.HANDSHAKE_TIMEOUT, name=self.spec.name, timeout=self.spec.startup_timeout, detail=last
            )
        return None

    def next_wakeup(self) -> float:
        """When judge() may change its mind without any I/O: a deadline, a probe, ready_after."""
        times = [self.deadline, self.handshake.next_wakeup() if self.handshake else self.deadline]
        if self.spec.url:
            times.append(self.next_probe)
        if self.spec.readiness == Readiness.ALIVE:
            times.append(self.started + self.spec.ready_after)
        times += self.severed.wakeups()
        return min(times)

    def _spawn_pinned(self) -> Failure | None:
        log("the server exited on the server/discover probe: spawning it once more, pinned to the legacy era")
        self.close()
        self.proc, self.exit_code, self.pinned = None, None, True
        return self.spawn()

    def _probe_http(self) -> None:
        from mcpctl.shim.http_mcp import handshake

        assert self.spec.url is not None
        remaining = self.deadline - self.clock.monotonic()
        try:
            ready = Ready(*handshake(self.spec.url, max(0.2, min(remaining, 5.0)), self.spec.headers))
        except (OSError, protocol.ProtocolError, ValueError) as exc:
            self.last_probe_error = str(exc)
            self.next_probe = self.clock.monotonic() + _HTTP_PROBE_INTERVAL
            return
        # Ready only if the answer came from our tree: a process of it owns the listening socket.
        self.problem = ports.taken(self.spec.name, self.spec.url, self.spec.command, ports.tree())
        self.met = ready if self.problem is None else None

    # -- the end -----------------------------------------------------------------------------

    def exited(self, status: int) -> None:
        self.exit_code = os.waitstatus_to_exitcode(status)
        if self.proc is not None:
            self.proc.returncode = self.exit_code  # we reaped it ourselves; keep Popen from trying
        if not self.tenant:  # a client's own process: `per_client` says whose it was and why it ended
            log(f"server exited: {classify_exit(self.exit_code)}")

    def end_tree(self, graceful: bool, meanwhile: Callable[[float], None]) -> None:
        """Close stdin and wait; SIGTERM the group and every tagged descendant; SIGKILL what is left.
        `meanwhile(seconds)`: what the shim does while it waits (sleeps up to that long, woken by a
        signal; answers its control socket; reaps)."""
        from mcpctl import process

        proc = self.proc
        self.close_stdin()
        # Closing stdin asks a stdio server to end its session. An HTTP server only gets signals, and so does
        # a run never ready: it has no session, and waiting would put a failed start past startup_timeout.
        # Real time, not the clock: this waits on a real process.
        polite = graceful and self.met is not None and self.spec.transport == "stdio"
        if proc is not None and self.exit_code is None and polite:
            deadline = time.monotonic() + min(STDIN_CLOSE_GRACE, self.spec.stop_timeout)
            while self.exit_code is None and (left := deadline - time.monotonic()) > 0:
                meanwhile(left)  # woken by SIGCHLD: no 10 ms polls, no waiting past the exit
        if proc is not None:
            process.signal_group(proc.pid, signal.SIGTERM)
            process.signal_group(proc.pid, signal.SIGCONT)  # a stopped process handles SIGTERM only once continued
        timeout = self.spec.stop_timeout if graceful else 0.5
        survivors = process.end_processes(self.tree(), timeout, lambda: meanwhile(0.0))
        if proc is not None:
            process.signal_group(proc.pid, signal.SIGKILL)
        for survivor in survivors:
            log(f"pid {survivor.pid} survived SIGKILL")
        meanwhile(0.0)
        self.drain()
        self.close()

    def tree(self) -> list[Any]:
        """Its processes: tagged with its run, or the shim's descendants, but never another client's.
        Nothing when the shim, a subreaper, has no child: what the tree left outside (a process that took
        the tag elsewhere) `mcpctl stop` still sweeps for."""
        if signals.nothing_below():
            return []
        from mcpctl import process

        return [p for p in process.tree(self.instance_id) if process.tenant_of(p) == self.tenant]

    def _flush_stdin(self, _mask: int) -> None:
        if self.stdin is not None:
            self.stdin.flush()

    def close_stdin(self) -> None:
        stdin, self.stdin = self.stdin, None
        if stdin is not None:
            stdin.stop()
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def close(self) -> None:
        self.close_stdin()
        for fd in list(self.readers):
            self.selector.unregister(fd)
            del self.readers[fd]
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
