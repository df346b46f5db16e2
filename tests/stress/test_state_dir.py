"""Damaged state files, and a state dir that is read-only or full: one-line errors, nothing lost."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env, fixture_server

pytestmark = pytest.mark.stress


def _one_line_errors(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, proc.stderr


@pytest.mark.parametrize(
    "content",
    [b"", b'{"name": "demo", "sta', b"\x00\xff\xfe\x01binary", b'{"schema": 99, "state": 7}', b"[1, 2]", b"[" * 100000],
    ids=["empty", "truncated", "binary", "wrong-schema", "not-an-object", "deeply-nested"],
)
def test_damaged_state_files_never_break_a_command(env: Env, content: bytes) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    assert env.run("start", "demo").returncode == 0
    assert env.run("stop", "demo").returncode == 0
    env.state_file("demo").write_bytes(content)
    for args in (["status"], ["status", "demo", "--json"], ["check"], ["doctor"], ["events", "demo"]):
        _one_line_errors(env.run(*args))
    started = env.run("start", "demo")
    assert started.returncode == 0, started.stderr
    assert env.status("demo")["state"] == "ready"


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[None]:
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_state_dir(env: Env) -> None:
    with _tmpfs(env.home, "2m"):
        env.write_config({"demo": fixture_server("healthy"), "other": fixture_server("healthy")})
        assert env.run("start", "demo").returncode == 0
        before = env.state_file("demo").read_bytes()
        filler = env.home / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as handle:
            while True:
                handle.write(b"\0" * 65536)
        started = env.run("start", "other")
        _one_line_errors(started)
        assert started.returncode != 0
        status = env.run("status")
        _one_line_errors(status)
        assert "demo" in status.stdout
        assert env.state_file("demo").read_bytes()[:20] == before[:20]  # the record is intact
        filler.unlink()
        assert env.run("start", "other").returncode == 0
        assert env.run("stop", "--all").returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only mount needs root (permissions do not stop root)")
def test_a_read_only_state_dir(env: Env) -> None:
    with _tmpfs(env.home, "8m"):
        env.write_config({"demo": fixture_server("healthy")})
        assert env.run("start", "demo").returncode == 0
        assert env.run("stop", "demo").returncode == 0
        before = env.state_file("demo").read_bytes()
        assert subprocess.run(["mount", "-o", "remount,ro", str(env.home)], check=False).returncode == 0
        try:
            for args in (["start", "demo"], ["status"], ["stop", "demo"], ["doctor", "--fix"]):
                _one_line_errors(env.run(*args))
            started = env.run("start", "demo")
            assert started.returncode != 0
            assert "error:" in started.stderr
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(env.home)], check=False)
        assert env.state_file("demo").read_bytes() == before
        assert env.run("start", "demo").returncode == 0
