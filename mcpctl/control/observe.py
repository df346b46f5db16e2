"""What is true about a server right now: its record reconciled with the kernel's lock and the processes."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import replace

from mcpctl import process, protocol
from mcpctl.config.model import Config
from mcpctl.config.views import config_hash
from mcpctl.constants import CONTROL_TIMEOUT, STATE_SCHEMA
from mcpctl.contract import Control
from mcpctl.errors import ErrorType, Failure
from mcpctl.events import append_event
from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.logfile import stamp
from mcpctl.paths import Paths
from mcpctl.privdir import read_own
from mcpctl.state import (
    CORRUPT,
    UNREADABLE,
    CorruptState,
    StateRecord,
    keep_copy,
    lock_holder,
    read_record,
    set_aside,
    write_record,
)
from mcpctl.states import HELD_BACK, LIVE, RUNNING, SERVING, Drift, ServerState

# A lost shim's {detail} (msgids: the CLI shows them translated).
LEFT_RUNNING = N_("it did not stop the server")
NO_FINAL_RECORD = N_("it left no final record (it was killed, or could not write one) and its server is not running")
# What a damaged record became ({problem}: state.CORRUPT or UNREADABLE); WARNINGS lets `status` translate them.
REBUILT = N_("{problem}; rebuilt from the running processes (the damaged file is kept as state.json.corrupt-*)")
REWRITTEN = N_("{problem}; its shim writes the record again (the damaged file is kept as {file})")
NOT_KEPT = N_("{problem}; its shim writes the record again (the damaged file could not be kept: {error})")
UNREAD = N_("{problem}; its shim writes the record again")
SILENT = N_("its shim (pid {pid}) did not answer within {timeout:g}s")  # control/controller.py's `unresponsive`
WARNINGS = (REBUILT, REWRITTEN, NOT_KEPT, UNREAD, CORRUPT, UNREADABLE, SILENT)
# What a lost shim left running, said after the above if there is one (ALSO); render/servers.py translates
# it whole, its pid and name kept as they are.
UNATTENDED = N_("server pid {pid} of {name} is still running unattended: `mcpctl stop {name}` ends it")
ALSO = N_("{warning}; {also}")
# What `stop` did about a lost shim (the record's last error); STOPPED_LOST lets `status` translate it.
GONE = N_("the shim of {name} (pid {pid}) was gone; `mcpctl stop` {done}")
GONE_UNKNOWN = N_("the shim of {name} was gone; `mcpctl stop` {done}")  # a record that named no shim
KILLED = N_("the shim of {name} (pid {pid}) did not stop in time and was killed; `mcpctl stop` {done}")
ENDED_LEFT, NOTHING_LEFT = N_("ended what it left ({count} process(es))"), N_("found nothing left of it")
SEE_LOG = N_("see what it logged last: `mcpctl logs {name}`")
STOPPED_LOST = (GONE, GONE_UNKNOWN, KILLED, ENDED_LEFT, NOTHING_LEFT, SEE_LOG)


@dataclass(frozen=True)
class Observation(Record):
    """A server as it really is. `record` is what the shim last wrote; the other fields are checked."""

    name: str
    state: ServerState
    record: StateRecord
    shim_pid: int | None  # from the kernel: the holder of the instance lock
    pid: int | None  # the server's pid, only if that process is still the one the shim started
    warning: str | None = None
    needs_repair: bool = False  # the record on disk disagrees with reality and no shim can fix it
    config_drift: Drift | None = None
    project: str | None = None  # set when a listing spans projects (`status -A`)
    orphaned: bool = False  # the config file that started it is gone
    lost_shim: int | None = None  # the pid of the shim judged lost just now (the record put right has none)

    @property
    def label(self) -> str:
        """The name people read: PROJECT/NAME in a listing of every project."""
        return f"{self.project}/{self.name}" if self.project else self.name

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    @property
    def lost(self) -> bool:
        """Its record said live, but no shim holds the lock: judged lost just now, not written yet."""
        error = self.record.last_error
        return self.needs_repair and error is not None and error.type == ErrorType.SHIM_LOST

    @property
    def cooldown_left(self) -> float:
        """Seconds until a start is no longer held back (backoff, or cooldown after a crash loop)."""
        return self.cooldown_left_at(time.monotonic())

    def cooldown_left_at(self, now: float) -> float:
        """`cooldown_left` as seen at `now` on the monotonic clock."""
        r = self.record
        if self.state not in HELD_BACK or r.cooldown_until_mono is None or r.boot_time is None:
            return 0.0
        if abs(r.boot_time - process.boot_time()) > 1.0:
            return 0.0  # recorded in an earlier boot: the monotonic clock started again
        return max(0.0, r.cooldown_until_mono - now)

    @property
    def current_error(self) -> Failure | None:
        """The last failure, unless the server has served since: a ready server has no error to show."""
        return None if self.state in SERVING else self.record.last_error

    @property
    def uptime_s(self) -> float | None:
        since = self.record.ready_at if self.state in SERVING else None
        return round(time.time() - since, 3) if since else None

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "shim_pid": self.shim_pid,
            "started_at": _iso(r.started_at),
            "ready_at": _iso(r.ready_at),
            "uptime_s": self.uptime_s,
            "restarts": r.restarts,
            "consecutive_failures": r.consecutive_failures,
            "total_failures": r.total_failures,
            "last_exit_code": r.last_exit_code,
            "last_error": self.current_error.to_json() if self.current_error else None,
            "last_failure": _failure_json(r),
            "cooldown_until": _iso(r.cooldown_until) if self.cooldown_left else None,
            "retry_in_s": round(self.cooldown_left, 3) if self.cooldown_left else None,
            "health": r.health if self.state in SERVING else None,
            "metrics": r.metrics if self.state in SERVING else None,
            "alerts": r.alerts if self.state in SERVING else [],
            "per_client": r.per_client if self.state in SERVING else None,
            "transport": r.transport,
            "protocol_era": r.server_info.get("protocol_era") or None,  # legacy | modern, as the last handshake found
            "protocol_version": r.server_info.get("protocol_version") or None,
            "config_hash": r.config_hash,
            "config_changed": None if self.config_drift in (None, Drift.FOREIGN) else self.config_drift != Drift.SAME,
            "warning": self.warning,
            "project": self.project or r.project,
            "config_file": r.config_file,
            "orphaned": self.orphaned,
            "write_error": r.write_error,
        }


def _failure_json(r: StateRecord) -> dict[str, Any] | None:
    """The last failure as history, whatever the state: what it was and when."""
    if r.last_failure is None:
        return None
    return {"type": r.last_failure.type.value, "message": r.last_failure.message, "time": _iso(r.last_failure_at)}


def _iso(when: float | None) -> str | None:
    return stamp(when) if when is not None else None


def observe(paths: Paths, name: str) -> Observation:
    """The record reconciled with the kernel's word on who holds the instance lock.

    A shim writes its first record only after it holds the lock, and its final record before it lets
    go. So a live record with no holder is looked at twice: a shim that exited cleanly in between has
    left its final record by then, and a shim that started in between holds the lock by then. Only a
    live record that still has no holder is a lost shim.
    """
    record, damage = _read(paths, name)
    holder = lock_holder(paths.instance_lock(name))
    if holder is None and record is not None and record.state in LIVE:
        record, damage = _read(paths, name)
        holder = lock_holder(paths.instance_lock(name))
    if holder is None:
        warning = REBUILT.format(problem=damage) if damage else None  # put_right sets the file aside
        return _without_shim(name, record or StateRecord(name=name), warning, corrupt=damage is not None)
    warning = _kept(paths, name, damage) if damage else None  # before the shim, asked below, writes over it
    if record is None or record.shim_pid != holder:
        fresh = _ask_shim(paths, name)
        if fresh is not None:
            record = fresh
        elif record is None or record.shim_pid != holder:
            # A shim that has just taken the lock and not yet written its first record.
            record = StateRecord(name=name, state=ServerState.STARTING, shim_pid=holder)
    state = record.state if record.state in LIVE else ServerState.STOPPING
    return Observation(name, state, record, holder, process.live_pid(record.pid, record.pid_create_time), warning)


def vouched(paths: Paths, name: str, answer: Any, holder: int | None) -> Observation | None:
    """A live shim's own answer to `mcpctl/status` as the observation of its server, its record not read
    back: when the answer is a live record of the lock's holder and the file on disk is a record of that
    same shim (behind it, when the shim cannot write: `write_error`). A damaged or foreign file is left to
    `observe`, which warns, and has the shim write it again; None then, and for anything else that is not
    such an answer."""
    fresh = answered(name, answer, holder)
    if fresh is None:
        return None
    try:
        on_disk = json.loads(read_own(paths.state_file(name)))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(on_disk, dict) or on_disk.get("schema") != STATE_SCHEMA or on_disk.get("shim_pid") != holder:
        return None
    return fresh


def answered(name: str, answer: Any, holder: int | None) -> Observation | None:
    """A shim's answer to `mcpctl/status` as the observation of its server: the record it holds in memory,
    which is newer than the file whenever the file could not be written. None unless it is a live record
    of the lock's holder."""
    if holder is None or isinstance(answer, Exception):
        return None
    try:
        record = StateRecord.from_json(answer)
    except (ValueError, TypeError, RecursionError):
        return None
    if record.shim_pid != holder or record.state not in LIVE:
        return None
    return Observation(name, record.state, record, holder, process.live_pid(record.pid, record.pid_create_time))


def _read(paths: Paths, name: str) -> tuple[StateRecord | None, CorruptState | None]:
    try:
        return read_record(paths.state_file(name)), None
    except CorruptState as exc:
        return None, exc


def _kept(paths: Paths, name: str, damage: CorruptState) -> str:
    """A live shim's damaged record: a copy of the bytes read kept (the shim writes the file again), and
    what became of it. A file that could not be read at all has nothing to keep."""
    if damage.raw is None:
        return UNREAD.format(problem=damage)
    try:
        aside = keep_copy(paths.state_file(name), damage.raw)
    except OSError as exc:
        return NOT_KEPT.format(problem=damage, error=exc.strerror or exc)
    return REWRITTEN.format(problem=damage, file=aside.name)


def _ask_shim(paths: Paths, name: str) -> StateRecord | None:
    """The holder's own record, when the file has none of its own (damaged, or not yet written, or
    another shim's): the shim writes it again too."""
    try:
        answer = protocol.call(paths.control_socket(name), Control.STATUS, {"save": True}, timeout=CONTROL_TIMEOUT)
        return StateRecord.from_json(answer)
    except (OSError, protocol.ProtocolError, ValueError, TypeError):
        return None


def _without_shim(name: str, record: StateRecord, warning: str | None, corrupt: bool) -> Observation:
    """No shim holds the lock, so nothing is supervised, whatever the record says. A server its lost shim
    left running is said at every look, from /proc, never stored in the record: a stop (or the server
    itself) may end it, and the record would then go on saying it runs."""
    error = record.last_error
    lost = error is not None and error.type == ErrorType.SHIM_LOST
    if record.state not in LIVE and not lost:
        return Observation(name, record.state, record, None, None, warning, needs_repair=corrupt)
    leftover = process.live_pid(record.pid, record.pid_create_time)
    if leftover:
        unattended = UNATTENDED.format(pid=leftover, name=name)
        warning = ALSO.format(warning=warning, also=unattended) if warning else unattended
    if record.state not in LIVE:
        return Observation(name, record.state, record, None, leftover, warning, needs_repair=corrupt)
    # Said of what is seen, not guessed: a shim that stopped its server but could not write its final
    # record (a read-only state dir) leaves the same traces as one killed whose server then exited.
    detail = LEFT_RUNNING if leftover else NO_FINAL_RECORD
    failure = Failure.of(ErrorType.SHIM_LOST, name=name, pid=record.shim_pid, detail=detail)
    fixed = record.but(
        state=ServerState.STOPPED, last_error=failure, shim_pid=None, stopped_at=record.stopped_at or time.time()
    )
    return Observation(name, ServerState.STOPPED, fixed, None, leftover, warning, True, lost_shim=record.shim_pid)


def ended_by_stop(paths: Paths, obs: Observation, ended: int, killed: int | None = None) -> Observation:
    """A shim gone without stopping its tree (killed, crashed), or one that did not stop in time and that
    `stop` killed (`killed`, its pid), after `stop` ended what it left (`ended` processes): the server is
    stopped, and its record and events say how, where observing the dead shim alone said it was lost with
    its server still running, which stayed in the record once the stop had ended it. Before `put_right`
    writes it."""
    name, shim = obs.name, killed or obs.lost_shim or obs.record.shim_pid
    done = ENDED_LEFT.format(count=ended) if ended else NOTHING_LEFT
    template = KILLED if killed is not None else GONE if shim is not None else GONE_UNKNOWN
    failure = Failure(ErrorType.SHIM_LOST, template.format(name=name, pid=shim, done=done), SEE_LOG.format(name=name))
    append_event(paths.events_file(name), ServerState.STOPPED, {"error": failure.to_json()})
    for socket in (paths.socket(name), paths.control_socket(name)):  # no shim of ours listens there
        with contextlib.suppress(OSError):
            socket.unlink()
    return replace(obs, record=obs.record.but(last_error=failure), pid=None)


def put_right(paths: Paths, obs: Observation) -> bool:
    """Write what `obs` found over a record that no shim can fix; the caller holds the state lock.

    Only if it is still true: no shim holds the instance lock now, and the record on disk is still the
    live record of the instance that was judged lost (not the final record it wrote on a clean exit, nor
    a newer shim's). Whether it wrote.
    """
    if not obs.needs_repair or lock_holder(paths.instance_lock(obs.name)) is not None:
        return False
    on_disk, damaged = _read(paths, obs.name)
    if on_disk is not None and (on_disk.instance_id != obs.record.instance_id or on_disk.state not in LIVE):
        return False
    paths.ensure_server(obs.name)
    path = paths.state_file(obs.name)
    if damaged is not None:
        with contextlib.suppress(OSError):
            set_aside(path)
    write_record(path, obs.record, make_room=True)
    return True


def drift(config: Config, obs: Observation, hashed: Mapping[str, str] | None = None) -> Drift | None:
    """For a server whose shim lives: the config file against what it runs. None when nothing runs, or
    no config file was found to compare with. `hashed`: config hashes made already, by server name."""
    if obs.shim_pid is None or obs.state == ServerState.STOPPING or config.path is None:
        return None
    server = config.servers.get(obs.name)
    if server is None:
        return Drift.FOREIGN if started_elsewhere(config, obs) else Drift.REMOVED
    expected = hashed.get(obs.name) if hashed else None
    return Drift.SAME if obs.record.config_hash == (expected or config_hash(config, server)) else Drift.CHANGED


def started_elsewhere(config: Config, obs: Observation) -> bool:
    """Whether another config file (of the same project name) started it: `apply` of this one leaves it
    running, and `status` does not send the user to apply."""
    origin = obs.record.config_file
    return origin is not None and config.path is not None and os.path.abspath(origin) != str(config.path.absolute())
