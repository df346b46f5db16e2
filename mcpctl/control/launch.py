"""Spawning shims fully detached (double fork, new session; one interpreter for many), listening to what
they report, and the controller's other hands on shim processes (control calls, the lock holder,
leftovers, signals)."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable
from functools import partial

from mcpctl import process, protocol
from mcpctl.config.environment import Resolution
from mcpctl.config.model import ServerConfig
from mcpctl.constants import CONTROL_TIMEOUT, ENV_HOME
from mcpctl.contract import Control
from mcpctl.control.early import Early
from mcpctl.hints import Any, Protocol
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths
from mcpctl.privdir import open_own
from mcpctl.settings import IN_SPEC
from mcpctl.state import StateRecord, lock_holder

# Leftovers of a killed shim get this long between SIGTERM and SIGKILL.
_LEFTOVER_STOP_TIMEOUT = 3.0


@dataclass
class Launch(Record):
    """A shim prepared or spawned: the read end of its report pipe and what it has said so far."""

    server: ServerConfig
    fd: int
    buffer: bytes = b""
    events: list[dict[str, Any]] | None = None
    heard_at: float | None = None  # monotonic: when its latest report arrived (its own "ready in")
    forked: int | None = None  # the first fork, which exits at once: reaped on close, not waited for
    spec: dict[str, Any] | None = None  # until spawned: what the shim runs by (secret: the environment)
    handed: tuple[int, ...] = ()  # until spawned: the shim's ends, its report pipe and its log

    def read_events(self) -> list[dict[str, Any]] | None:
        """New events; None once the shim closed its end (it reported its outcome, or died)."""
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [event for event in map(_event, lines) if event is not None]

    def close(self) -> None:
        for fd in (self.fd, *self.handed):
            if fd >= 0:
                os.close(fd)
        self.fd, self.handed, self.spec = -1, (), None
        if self.forked is not None:
            with contextlib.suppress(ChildProcessError):  # launches spawned together share it
                os.waitpid(self.forked, 0)
            self.forked = None


def _event(line: bytes) -> dict[str, Any] | None:
    """One report line; None for what is not one (a shim dying mid-line, or a library printing to stdout),
    so that one shim's noise never costs a `start --all` the other servers' results."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def spec_of(
    server: ServerConfig,
    resolved: Resolution,
    alert_tables: dict[str, Any],
    config_hash: str,
    project: str | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """The spec a shim runs `server` by, as JSON (`contract.Spec`): secret, since it holds the environment.
    `project` and `origin` (the config file) go into the shim's record, so PROJECT/NAME finds it."""
    filled = {
        "args": resolved.args,
        "env": resolved.env,
        "cwd": resolved.cwd,
        "url": resolved.url,
        "headers": resolved.headers,
        "config_hash": config_hash,
        "secrets": resolved.secrets,
        "env_sources": resolved.sources(),
        "alerts": alert_tables,
        "project": project or "",
        "config_file": origin,
    }
    # The other settings the shim takes as they are written.
    as_written = {name: getattr(server, name) for name in IN_SPEC if name not in filled}
    return {"name": server.name, **as_written, **filled}


def prepare_shim(
    paths: Paths,
    server: ServerConfig,
    resolved: Resolution,
    alert_tables: dict[str, Any],
    config_hash: str,
    origin: str | None = None,
) -> Launch:
    """A shim for `server`, ready to spawn: its spec made, its report pipe and its log open."""
    spec = spec_of(server, resolved, alert_tables, config_hash, paths.project, origin)
    log_fd = open_own(paths.log_file(server.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    report_read, report_write = os.pipe()
    os.set_blocking(report_read, False)
    return Launch(server, report_read, spec=spec, handed=(report_write, log_fd))


def spawn_shims(
    paths: Paths, launches: list[Launch], early: Early | None = None, meanwhile: Callable[[], None] | None = None
) -> None:
    """Spawn the prepared shims in a new session, their parent already gone: one `python -m mcpctl.shim
    NAME ...` that, for more than one server, forks a shim for each (see `mcpctl.shim.__main__`). A lone
    shim goes to `early`, when that was started ahead for its server. `meanwhile` runs while the shims'
    interpreter starts up, before they are given their specs: the CPU is free then, where a moment later
    fifty shims and their servers share it.

    The specs hold the resolved environments, and so the secrets: they go through a pipe, never argv.
    """
    launches = [launch for launch in launches if launch.spec is not None]
    if not launches:
        return
    one = len(launches) == 1
    items = [
        {
            "spec": launch.spec,
            "report": 1 if one else launch.handed[0],
            "log": 2 if one else launch.handed[1],
        }
        for launch in launches
    ]
    ahead = None
    if one and early is not None and (early.name, early.home) == (launches[0].server.name, str(paths.home)):
        ahead = early.take()
    forked: int | None
    if ahead is not None:  # our own child, never reaped by us: it outlives this command
        (spec_write, report_read), forked = ahead, None
        os.close(launches[0].fd)  # it reports on the early shim's pipe instead
        launches[0].fd = report_read
    else:
        spec_write, forked = _exec_shims(launches, one, str(paths.home))
    for launch in launches:
        launch.forked = forked
        for fd in launch.handed:
            os.close(fd)
        launch.handed, launch.spec = (), None
    if meanwhile is not None:
        meanwhile()
    # The fork is not waited for here: under the load of fifty shims booting, each wait for it to exit
    # took ~35 ms. Specs past the pipe's 64 KiB wait for the shim to read them: it does so first thing.
    try:
        view = memoryview(json.dumps(items).encode())
        while view:
            view = view[os.write(spec_write, view) :]
    except OSError:
        pass  # the shim died at once; its silence on the report pipes says so
    finally:
        os.close(spec_write)


def _exec_shims(launches: list[Launch], one: bool, home: str) -> tuple[int, int]:
    """Fork, and exec `python -m mcpctl.shim NAME ...` detached: the write end of its stdin, the fork."""
    argv = [sys.executable, "-m", "mcpctl.shim", *(launch.server.name for launch in launches)]
    env = {**os.environ, ENV_HOME: home}  # every process of ours names its state dir (doctor looks)
    spec_read, spec_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked child, which only ever execs or exits
        try:
            os.setsid()
            if os.fork() > 0:
                os._exit(0)
            os.dup2(spec_read, 0)
            report, log = launches[0].handed
            os.dup2(report if one else os.open(os.devnull, os.O_WRONLY), 1)
            os.dup2(log, 2)  # a brood that cannot even import says why in the first server's log
            for fd in () if one else (fd for launch in launches for fd in launch.handed):
                os.set_inheritable(fd, True)
            os.chdir("/")
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(spec_read)
    return spec_write, pid


def wait_events(launches: list[Launch], until: set[str], deadline: float) -> None:
    """Collect events from every launch until each reported one of `until`, closed, or time ran out."""
    pending = {launch.fd: launch for launch in launches}
    for launch in launches:
        launch.events = launch.events or []
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        ready, _, _ = select.select(list(pending), [], [], min(remaining, 1.0))
        for fd in ready:
            launch = pending[fd]
            events = launch.read_events()
            assert launch.events is not None
            if events is None:
                del pending[fd]
                continue
            launch.events.extend(events)
            launch.heard_at = time.monotonic() if events else launch.heard_at
            if any(event.get("event") in until for event in events):
                del pending[fd]


class Answers(Protocol):
    """Control answers coming in (`protocol.Asking`), by server name: each a result or an exception."""

    sent: list[str]  # those whose request went out (a shim listens there)

    def __enter__(self) -> Answers:
        """Itself; leaving hangs up on the shims that have not answered."""

    def __exit__(self, *_: object) -> None:
        """Hang up on the shims that have not answered."""

    def answered(self) -> dict[str, Any]:
        """Those in so far, without waiting."""

    def wait(self, names: Iterable[str]) -> dict[str, Any]:
        """Each of `names`, waited for until the deadline of the ask (then TimeoutError)."""


class Launcher(Protocol):
    """Everything the controller does to shim processes, so a unit test can stand in for them."""

    def prepare(self, server: ServerConfig, resolved: Resolution, alerts: dict[str, Any], config_hash: str) -> Launch:
        """A shim for `server`, not spawned yet; `spawn` starts it and its reports arrive through `wait`."""

    def spawn(self, launches: list[Launch], meanwhile: Callable[[], None] | None = None) -> None:
        """Spawn the prepared shims of `launches`, all at once; `meanwhile`: what to do while their
        interpreter starts up (it must not need them)."""

    def wait(self, launches: list[Launch], until: set[str], deadline: float) -> None:
        """Collect reports until each launch said one of `until`, closed, or `deadline` (monotonic) passed."""

    def call(self, name: str, method: str, params: dict[str, Any] | None = None) -> Any:
        """A control call to the shim of `name`; raises OSError or ProtocolError when it does not answer."""

    def call_all(self, names: list[str], method: str) -> list[Any]:
        """The same call to the shims of `names`, all at once: each one's result, or what `call` raises."""

    def ask_all(self, names: list[str], method: str) -> Answers:
        """The same call to the shims of `names`, sent now; their answers come in while the caller goes on."""

    def ask_to_stop(self, shims: list[tuple[str, int]]) -> list[bool]:
        """Ask each shim (name, pid) to stop, all at once; False for one that could not be asked."""

    def holder(self, name: str) -> int | None:
        """The pid holding the instance lock of `name`, if any."""

    def frozen(self, pid: int) -> bool:
        """Whether the shim `pid` is stopped (SIGSTOP): a control call would wait out its timeout."""

    def await_exit(self, pid: int, timeout: float) -> None:
        """Return when `pid` has exited or `timeout` (seconds) has passed, whichever is first."""

    def end_leftovers(self, record: StateRecord) -> int:
        """End what an earlier instance left behind (tagged processes only); how many were ended."""

    def signal(self, shim_pid: int, sig: int) -> None:
        """Signal `shim_pid`, but only if it runs mcpctl.shim."""


@dataclass(frozen=True)
class ShimLauncher(Record):
    """The real shims of the state dir at `paths`; `origin` is the config file they are started from;
    `early`, a shim started ahead for the one server this command may start (`mcpctl.control.early`)."""

    paths: Paths
    origin: str | None = None
    early: Early | None = None

    def prepare(self, server: ServerConfig, resolved: Resolution, alerts: dict[str, Any], config_hash: str) -> Launch:
        return prepare_shim(self.paths, server, resolved, alerts, config_hash, self.origin)

    def spawn(self, launches: list[Launch], meanwhile: Callable[[], None] | None = None) -> None:
        spawn_shims(self.paths, launches, self.early, meanwhile)

    def wait(self, launches: list[Launch], until: set[str], deadline: float) -> None:
        wait_events(launches, until, deadline)

    def call(self, name: str, method: str, params: dict[str, Any] | None = None) -> Any:
        return protocol.call(self.paths.control_socket(name), method, params, timeout=CONTROL_TIMEOUT)

    def call_all(self, names: list[str], method: str) -> list[Any]:
        with self.ask_all(names, method) as asking:
            return list(asking.wait(names).values())

    def ask_all(self, names: list[str], method: str) -> protocol.Asking:
        calls = {name: (self.paths.control_socket(name), method) for name in names}
        return protocol.Asking(calls, timeout=CONTROL_TIMEOUT)

    def ask_to_stop(self, shims: list[tuple[str, int]]) -> list[bool]:
        """SIGTERM (a shim's stop, as `mcpctl/stop` is) to each shim that still holds its instance lock,
        through a pidfd: fifty in well under a millisecond, where fifty control calls took the CLI
        120-160 ms, starved of CPU by the shims it had asked already. A shim gone meanwhile needs
        nothing; where a pidfd cannot be used (not Linux), or another shim holds the lock now, the
        control request."""
        targets: list[tuple[int, Callable[[], int | None]]] = [(pid, partial(self.holder, name)) for name, pid in shims]
        signalled = process.signal_holders(targets, signal.SIGTERM, wake=True)  # a frozen shim stops too
        rest = [name for (name, _), done in zip(shims, signalled, strict=True) if done is None]
        answers = iter(self.call_all(rest, Control.STOP) if rest else [])
        return [done is not None or not isinstance(next(answers), Exception) for done in signalled]

    def holder(self, name: str) -> int | None:
        return lock_holder(self.paths.instance_lock(name))

    def frozen(self, pid: int) -> bool:
        return process.frozen(pid)

    def await_exit(self, pid: int, timeout: float) -> None:
        process.await_exit(pid, timeout)

    def end_leftovers(self, record: StateRecord) -> int:
        procs = process.tagged(record.instance_id) if record.instance_id else []
        alive = process.live_pid(record.pid, record.pid_create_time)  # /proc first: mostly it is gone
        server = process.same_process(record.pid, record.pid_create_time) if alive else None
        if server is not None and server.pid not in {p.pid for p in procs}:
            procs.append(server)
        if procs:
            process.end_processes(procs, timeout=_LEFTOVER_STOP_TIMEOUT)
        return len(procs)

    def signal(self, shim_pid: int, sig: int) -> None:
        process.signal_if_running(shim_pid, "mcpctl.shim", sig)
