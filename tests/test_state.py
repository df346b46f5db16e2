"""State records and locks, with real processes holding the locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mcpctl.constants import STATE_SCHEMA
from mcpctl.errors import BusyError, ErrorType, Failure, StateDirError
from mcpctl.state import (
    CorruptState,
    StateRecord,
    lock_holder,
    read_record,
    state_lock,
    write_all_atomic,
    write_record,
)
from tests.conftest import wait_for

HOLD_LOCK = """
import sys, time
from pathlib import Path
from mcpctl.state import InstanceLock
assert InstanceLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_record_round_trip(tmp_path: Path) -> None:
    record = StateRecord(name="a", state="ready", pid=12, last_error=Failure(ErrorType.CRASHED, "boom", "look"))
    write_record(tmp_path / "s.json", record)
    assert read_record(tmp_path / "s.json") == record
    assert read_record(tmp_path / "missing.json") is None
    assert oct((tmp_path / "s.json").stat().st_mode & 0o777) == "0o600"


def test_a_record_written_before_last_failure_keeps_its_error_as_the_history() -> None:
    old = {"schema": STATE_SCHEMA, "name": "a", "state": "stopped", "last_error_at": 5.0,
           "last_error": {"type": "crashed", "message": "boom", "hint": None, "retryable": True}}  # fmt: skip
    record = StateRecord.from_json(old)
    assert (record.last_failure, record.last_failure_at) == (record.last_error, 5.0)
    assert record.but(last_error=None).last_failure == record.last_error  # cleared: the history stays


@pytest.mark.parametrize("content", [b"", b'{"name": "a", "sta', b"\x00\xff\xfe binary", b'{"schema": 99}', b"[1, 2]"])
def test_damaged_records_raise_corrupt_state(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(CorruptState):
        read_record(path)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    for n in range(20):
        write_record(path, StateRecord(name="a", restarts=n))
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    record = read_record(path)
    assert record is not None
    assert record.restarts == 19


def test_lock_holder_is_the_kernels_answer(tmp_path: Path) -> None:
    lock = tmp_path / "instance.lock"
    assert lock_holder(lock) is None
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert lock_holder(lock) == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert lock_holder(lock) is None  # the kernel released it when the holder died
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


def test_state_lock_times_out_as_busy(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with state_lock(lock):
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        wait_for(entered.is_set)
        with pytest.raises(BusyError) as caught, state_lock(lock, timeout=0.2):
            pass
        assert caught.value.exit_code == 9
    finally:
        release.set()
        thread.join()
    with state_lock(lock, timeout=0.2):
        assert os.path.exists(lock)


def test_many_files_are_written_at_once_or_not_at_all(tmp_path: Path) -> None:
    files = {tmp_path / f"s{i}" / "wanted.json": f"{i}\n".encode() for i in range(5)}
    for path in files:
        path.parent.mkdir()
    (tmp_path / "s0" / "wanted.json").write_bytes(b"old\n")
    write_all_atomic(files)
    assert {p: p.read_bytes() for p in files} == files
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []  # no temp file left
    broken = {tmp_path / "s1" / "wanted.json": b"new\n", tmp_path / "gone" / "wanted.json": b"new\n"}
    with pytest.raises(StateDirError, match=r"gone/wanted\.json"):
        write_all_atomic(broken)
    assert (tmp_path / "s1" / "wanted.json").read_bytes() == b"1\n"  # nothing renamed when one write failed
    assert sorted(p.name for p in tmp_path.rglob(".*")) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_one_look_answers_from_one_pass_over_proc() -> None:
    from mcpctl import procfs

    tag = b"MCPCTL_INSTANCE=one-look-probe"
    env = {**os.environ, "MCPCTL_INSTANCE": "one-look-probe"}
    with procfs.one_look():
        assert procfs.environ_holders(tag) == []  # the look is taken here
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
        wait_for(lambda: tag in Path(f"/proc/{child.pid}/environ").read_bytes())  # it runs, tagged
        assert procfs.environ_holders(tag) == []  # within the block, the first look is the answer
    try:
        wait_for(lambda: procfs.environ_holders(tag) == [child.pid] or None, timeout=10)  # looked again
    finally:
        child.kill()
        child.wait()
