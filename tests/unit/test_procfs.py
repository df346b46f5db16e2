"""procfs.descendants: the kernel's children lists where it keeps them, one pass over /proc/PID/stat where not.

The real /proc of this machine first (a real tree of processes); then directory trees laid out as /proc lays
out the files read, for the way this machine's kernel does not offer (CONFIG_PROC_CHILDREN).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcpctl import procfs


@pytest.fixture(autouse=True)
def unknown_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test learns anew whether the kernel lists children."""
    monkeypatch.setattr(procfs, "_listed", [])


GRANDPARENT = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(grandchild.pid, flush=True)
time.sleep(60)
"""


def test_a_real_tree_is_found_to_the_grandchild() -> None:
    with subprocess.Popen([sys.executable, "-c", GRANDPARENT], stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        grandchild = int(child.stdout.readline())
        try:
            found = procfs.descendants(os.getpid())
            assert found is not None
            assert {child.pid, grandchild} <= set(found)
            assert os.getpid() not in found
        finally:
            for pid in (grandchild, child.pid):
                os.kill(pid, 9)


def _process(root: Path, pid: int, ppid: int, children: dict[int, list[int]] | None) -> None:
    """/proc/PID/stat, and /proc/PID/task/TID/children for each thread when `children` is given."""
    (root / str(pid)).mkdir()
    (root / str(pid) / "stat").write_text(f"{pid} (a (b) c) S {ppid} {pid} {pid} 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 99\n")
    for tid, kids in (children or {}).items():
        (root / str(pid) / "task" / str(tid)).mkdir(parents=True)
        (root / str(pid) / "task" / str(tid) / "children").write_text(" ".join(map(str, kids)) + (" " if kids else ""))


def test_the_kernels_children_lists_are_walked_thread_by_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procfs, "_PROC", str(tmp_path))
    _process(tmp_path, 100, 1, {100: [101, 102]})
    _process(tmp_path, 101, 100, {101: [], 105: [103]})  # 103 was forked by thread 105 of 101
    _process(tmp_path, 102, 100, {102: []})
    _process(tmp_path, 103, 101, {103: [104]})  # 104 is gone: listed, but no /proc/104 any more
    _process(tmp_path, 200, 1, {200: [201]})  # another tree: never read
    found = procfs.descendants(100)
    assert found is not None
    assert sorted(found) == [101, 102, 103, 104]
    assert procfs._listed == [True]


def test_without_children_lists_every_stat_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procfs, "_PROC", str(tmp_path))
    for pid, ppid in ((100, 1), (101, 100), (102, 100), (103, 101), (200, 1), (201, 200)):
        _process(tmp_path, pid, ppid, None)
    (tmp_path / "100" / "task" / "100").mkdir(parents=True)  # threads, but no children files
    found = procfs.descendants(100)
    assert found is not None
    assert sorted(found) == [101, 102, 103]
    assert procfs._listed == [False]


def test_a_gone_process_teaches_nothing_about_the_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procfs, "_PROC", str(tmp_path))
    _process(tmp_path, 100, 1, None)
    assert procfs.descendants(999) == []  # no /proc/999: the scan finds nothing below it
    assert procfs._listed == []
