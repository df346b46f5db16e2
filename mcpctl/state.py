"""State records on disk, written atomically, and the two locks: the state-dir lock and instance locks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import struct
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import field, fields, replace
from pathlib import Path

from mcpctl.constants import STATE_LOCK_TIMEOUT, STATE_SCHEMA
from mcpctl.errors import BusyError, ErrorType, Failure, MCPCtlError, StateDirError
from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.privdir import open_own, read_own
from mcpctl.states import ServerState


@dataclass(frozen=True)
class StateRecord(Record):
    """What a server's state.json holds. Never anything secret: no env values, no argv."""

    name: str
    state: ServerState = ServerState.STOPPED
    instance_id: str | None = None
    shim_pid: int | None = None
    shim_create_time: float | None = None
    pid: int | None = None
    pid_create_time: float | None = None
    transport: str = "stdio"
    config_hash: str | None = None
    started_at: float | None = None
    ready_at: float | None = None
    stopped_at: float | None = None
    attempt: int = 0  # runs started by this record's shims, so a waiting CLI can tell runs apart
    restarts: int = 0
    consecutive_failures: int = 0
    total_failures: int = 0
    last_exit_code: int | None = None
    # The current error: the failure that ended the last run, cleared by a person's start, a ready server
    # and a clean stop; `status` shows it while the server does not serve.
    last_error: Failure | None = None
    last_failure: Failure | None = None  # the last failure whatever came after it: the history
    last_failure_at: float | None = None  # when last_failure came
    # Until when a start is held back (backoff, or cooldown after a crash loop): wall time for people,
    # and the monotonic clock (system-wide, valid within one boot) for decisions.
    cooldown_until: float | None = None
    cooldown_until_mono: float | None = None
    boot_time: float | None = None
    server_info: dict[str, Any] = field(default_factory=dict)
    health: dict[str, Any] | None = None  # the last ping: ok, latency_ms, checked_at, consecutive_failures
    metrics: dict[str, Any] | None = None  # the last resource sample of the whole tree
    alerts: list[dict[str, Any]] = field(default_factory=list)  # firing now: name, severity, since, metric
    per_client: int | None = None  # share = "per-client": the client processes running now
    project: str | None = None  # the project whose config file started it
    config_file: str | None = None  # that file (absolute), so PROJECT/NAME finds it from anywhere
    # Set by a shim whose writes fail (a full disk): what failed. It reaches the CLI through mcpctl/status.
    write_error: str | None = None
    updated_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Its fields as JSON values, for encoding at once: the dicts and lists in it are the record's own
        (`asdict` would deep-copy them, ~120 µs of every write of a record)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("last_error", "last_failure"):
            failure = getattr(self, key)
            data[key] = failure.to_json() if failure else None
        data["schema"] = STATE_SCHEMA
        return data

    @classmethod
    def from_json(cls, data: object) -> StateRecord:
        """Build a record from parsed JSON; raises ValueError when the shape is wrong."""
        if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA or "name" not in data:
            raise ValueError("not a state record of this version")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["last_error"] = Failure.from_json(data.get("last_error"))
        if "last_failure" in data:
            values["last_failure"] = Failure.from_json(data["last_failure"])
        else:  # written before the history had fields of its own: its last_error was the history
            values["last_failure"], values["last_failure_at"] = values["last_error"], data.get("last_error_at")
        if not isinstance(data.get("state", ""), str) or not isinstance(data["name"], str):
            raise ValueError("state and name must be strings")
        values["state"] = ServerState(data.get("state", ServerState.STOPPED))  # ValueError: a state we do not know
        return cls(**values)

    def but(self, **changes: Any) -> StateRecord:
        now = time.time()
        error = changes.get("last_error")
        if error is not None and error is not self.last_error:  # a new failure (not the old one carried on)
            changes.setdefault("last_failure", error)
            changes.setdefault("last_failure_at", now)
        return replace(self, updated_at=now, **changes)


CORRUPT, UNREADABLE = N_("{path} is corrupt ({error})"), N_("cannot read {path}: {error}")  # control/doctor.KNOWN


class CorruptState(Exception):
    """A state file exists but cannot be read as a record; `raw`: the bytes read, when it could be read."""

    def __init__(self, message: str, raw: bytes | None = None) -> None:
        super().__init__(message)
        self.raw = raw


def read_record(path: Path) -> StateRecord | None:
    """The record at `path`, None when there is none; CorruptState when it is unreadable."""
    try:
        raw = read_own(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptState(UNREADABLE.format(path=path, error=exc.strerror)) from exc
    try:
        return StateRecord.from_json(json.loads(raw))
    except (ValueError, TypeError, RecursionError) as exc:
        raise CorruptState(CORRUPT.format(path=path, error=exc), raw) from exc


def left_down(path: Path, name: str) -> MCPCtlError | None:
    """Why a client that lost server `name` must not start it again: its last shim left it down on
    purpose, as the record at `path` says: stopped (by a person, or `apply`) or failed (its restart
    policy gave up: that failure). None when the shim died without saying so, or nothing ran yet: then
    a start brings it back."""
    try:
        record = read_record(path)
    except CorruptState:
        return None
    if record is None or record.state not in (ServerState.STOPPED, ServerState.FAILED):
        return None
    if record.state == ServerState.FAILED and record.last_error is not None:
        return MCPCtlError.from_failure(record.last_error)
    return MCPCtlError.of(ErrorType.NOT_RUNNING, name=name)


NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})  # a write failed for want of space


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write to a temp file, fsync it (when `durable`), rename it over `path`: a reader sees the old or
    the new file."""
    write_all_atomic({path: data}, durable)


def write_all_atomic(files: Mapping[Path, bytes], durable: bool = True) -> None:
    """write_atomic for many files at once: every temp file written, then all fsynced (the first fsync
    commits the journal for them all, so fifty files cost about one), then each renamed over its file."""
    temps = {path: path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in files}
    current, opened = next(iter(files)), {}  # current: the file an error is about
    try:
        try:
            for path, temp in temps.items():
                current = path
                opened[path] = fd = open_own(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                _write_fully(fd, files[path])
            for path, fd in opened.items() if durable else ():
                current = path
                os.fsync(fd)
        finally:
            for fd in opened.values():
                os.close(fd)
        for path, temp in temps.items():
            current = path
            os.replace(temp, path)
    except OSError as exc:
        for temp in temps.values():
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise StateDirError(
            f"cannot write {current}: {exc.strerror}", "check free space and permissions of the state directory"
        ) from exc


def write_record(path: Path, record: StateRecord, make_room: bool = False) -> None:
    """Not durable: a record describes processes, which a power cut ends too (the next look finds their
    pids gone or reused, by create time), so an fsync per write, three per crash, would buy nothing.
    One line: `json` encodes it in C only without `indent` (a shim writes its record five times a run).

    `make_room`: the record replaces one that is no longer true and would mislead (a live record once its
    shim is gone): on a full disk the old file is removed, to free its space, and the write tried again;
    if it still fails, no record is better than the old one."""
    data = json.dumps(record.to_json(), sort_keys=True).encode() + b"\n"
    try:
        write_atomic(path, data, durable=False)
    except StateDirError as exc:
        if not make_room or not isinstance(exc.__cause__, OSError) or exc.__cause__.errno not in NO_ROOM:
            raise
        with contextlib.suppress(OSError):
            path.unlink()
        write_atomic(path, data, durable=False)


def set_aside(path: Path) -> Path:
    """Keep a damaged state file beside the record that replaces it (`state.json.corrupt-TIME`): it may
    hold the only account of a failure. Where it went."""
    aside = _corrupt_name(path)
    os.replace(path, aside)
    return aside


def keep_copy(path: Path, raw: bytes) -> Path:
    """Keep the damaged bytes read from a state file that its live shim is about to write again (it, not
    the reader, owns the file: moving it could take a record the shim has just written instead). Where."""
    aside = _corrupt_name(path)
    try:
        fd = open_own(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:  # another look kept it this very second
        return aside
    try:
        _write_fully(fd, raw)
    finally:
        os.close(fd)
    return aside


def _corrupt_name(path: Path) -> Path:
    """Where a damaged state file is kept: `state.json.corrupt-TIME`, beside it."""
    return path.with_name(f"{path.name}.corrupt-{int(time.time())}")


def _write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextmanager
def state_lock(path: Path, timeout: float = STATE_LOCK_TIMEOUT) -> Iterator[None]:
    """The state-dir lock (flock), taken by every CLI mutation; BusyError after `timeout` seconds, and
    StateDirError (exit 1, saying what to do) when the lock file cannot be opened at all."""
    try:
        fd = open_own(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise _unusable_lock(path, exc) from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BusyError.of(ErrorType.LOCK_TIMEOUT, path=path, timeout=timeout) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)


def _unusable_lock(path: Path, exc: OSError) -> StateDirError:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "the state directory must be writable: fix its mount or permissions, or choose another with --home"
    else:  # a directory, a symlink or something else where mcpctl's lock file belongs
        hint = f"{path} is not mcpctl's lock file: remove it (mcpctl makes it again)"
    return StateDirError(f"cannot take the state lock {path}: {exc.strerror or exc}", hint)


class InstanceLock:
    """The lock a shim holds for its whole life; the kernel releases it however the shim dies.

    It is a POSIX record lock (lockf) so that others can ask the kernel who holds it (F_GETLK)
    without taking it. A process must keep exactly one descriptor open on the file: closing any
    descriptor of a file drops the POSIX locks the process holds on it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = open_own(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        self.fd = fd
        return True


def lock_holder(path: Path) -> int | None:
    """The PID holding the instance lock at `path`, or None; asks the kernel, takes nothing."""
    try:
        fd = open_own(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        query = _pack_flock(fcntl.F_WRLCK)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        lock_type, pid = _unpack_flock(answer)
        return pid if lock_type != fcntl.F_UNLCK and pid > 0 else None
    finally:
        os.close(fd)


# struct flock differs by platform: the order of fields and the size of off_t.
if sys.platform == "darwin":
    _FLOCK = "qqihh"

    def _pack_flock(kind: int) -> bytes:
        return struct.pack(_FLOCK, 0, 0, 0, kind, os.SEEK_SET)

    def _unpack_flock(raw: bytes) -> tuple[int, int]:
        _start, _len, pid, kind, _whence = struct.unpack(_FLOCK, raw[: struct.calcsize(_FLOCK)])
        return kind, pid

else:
    _FLOCK = "hhqqi"

    def _pack_flock(kind: int) -> bytes:
        # Pad to the kernel's struct size (32 bytes on LP64) so it never writes past our buffer.
        return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0).ljust(32, b"\0")

    def _unpack_flock(raw: bytes) -> tuple[int, int]:
        kind, _whence, _start, _len, pid = struct.unpack(_FLOCK, raw[: struct.calcsize(_FLOCK)])
        return kind, pid
