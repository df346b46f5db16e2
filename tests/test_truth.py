"""Status tells the truth whatever happened behind mcpctl's back: kills, PID reuse, damaged files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import TINY, Env, alive, fixture_server, settle, tiny_server, wait_for


def start_ready(env: Env, name: str = "demo") -> dict[str, object]:
    proc = env.run("start", name)
    assert proc.returncode == 0, proc.stderr
    status = env.status(name)
    assert status["state"] == "ready"
    return status


def grandchild_config(env: Env, **settings: object) -> Path:
    pidfile = env.workdir / "grandchild.pid"
    settings = {"stop_timeout": 1, **settings}
    server = fixture_server("grandchild", env={"GRANDCHILD_PIDFILE": str(pidfile)}, **settings)
    env.write_config({"demo": server})
    return pidfile


def test_stop_ends_a_setsid_grandchild_that_ignores_sigterm(env: Env) -> None:
    pidfile = grandchild_config(env)
    server = start_ready(env)
    grandchild = int(wait_for(pidfile.read_text))
    assert alive(grandchild)
    assert os.getsid(grandchild) == grandchild  # it left the server's session and process group
    stopped = env.run("stop", "demo")
    assert stopped.returncode == 0, stopped.stderr
    # stop returns only when nothing is left: no waiting here.
    assert not alive(grandchild)
    assert not alive(int(server["pid"]))  # type: ignore[call-overload]
    assert env.our_processes() == []


def test_a_shim_ending_a_slow_tree_answers_status_meanwhile(env: Env) -> None:
    """A restart in place waits on the old tree (a grandchild that ignores SIGTERM, for `stop_timeout`).
    Meanwhile the shim answers `status` at once: it is starting again, not unresponsive (which is what a
    2 s wait for it used to report)."""
    pidfile = grandchild_config(env, stop_timeout=8)
    server = start_ready(env)
    wait_for(pidfile.read_text)
    argv = [sys.executable, "-m", "mcpctl", "restart", "demo"]
    restart = subprocess.Popen(argv, cwd=env.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: not alive(int(server["pid"])), timeout=60)  # type: ignore[call-overload]
        assert restart.poll() is None  # the grandchild holds the restart up: the shim waits on it now
        status = env.status("demo")
        assert (status["state"], status["warning"]) == ("starting", None), status
        _, err = restart.communicate(timeout=60)
    finally:
        if restart.poll() is None:
            restart.kill()
            restart.communicate()
    assert restart.returncode == 0, err
    assert env.status("demo")["state"] == "ready"


def test_kill_9_of_the_shim_is_seen_and_cleaned_up(env: Env) -> None:
    pidfile = grandchild_config(env)
    server = start_ready(env)
    grandchild = int(wait_for(pidfile.read_text))
    os.kill(int(server["shim_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    wait_for(lambda: not alive(int(server["shim_pid"])))  # type: ignore[call-overload]

    # The server saw EOF on stdin and exits by itself; the setsid'd grandchild is left behind.
    wait_for(lambda: not alive(int(server["pid"])))  # type: ignore[call-overload]
    status = env.status("demo")
    assert status["state"] == "stopped"
    assert status["shim_pid"] is None
    assert status["last_error"]["type"] == "shim_lost"
    assert env.run("status", "demo").returncode == 3
    assert alive(grandchild)

    stopped = env.json("stop", "demo")["results"][0]
    assert stopped["outcome"] == "stopped"
    assert stopped["leftovers_ended"] == 1
    assert not alive(grandchild)
    assert env.our_processes() == []
    start_ready(env)  # and it starts again normally


def _timed_stop(env: Env) -> tuple[dict[str, object], float]:
    """`stop demo --json`'s result, and how long the command took."""
    began = time.monotonic()
    stopped = env.json("stop", "demo")["results"][0]
    return stopped, time.monotonic() - began


def test_stopped_in_is_the_whole_stop_with_a_leftover_that_ignores_sigterm(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ending what a killed shim left takes seconds when it ignores SIGTERM: "stopped in" counts them, with
    the shim killed before the stop (it said 0.00s for 3.2 s) and during it (0.97s for 4.05 s)."""
    pidfile = grandchild_config(env, stop_timeout=3)
    server = start_ready(env)
    wait_for(pidfile.read_text)
    os.kill(int(server["shim_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    wait_for(lambda: not alive(int(server["shim_pid"])))  # type: ignore[call-overload]
    stopped, took = _timed_stop(env)
    assert stopped["leftovers_ended"] >= 1  # the grandchild, and the server if it has not exited yet
    assert 2.9 <= float(stopped["elapsed_s"]) <= took  # type: ignore[arg-type]
    assert f"the shim of demo (pid {server['shim_pid']}) was gone" in env.status("demo")["last_error"]["message"]
    monkeypatch.setenv("MCPCTL_LANG", "zh_CN")
    shown = env.run("status", "demo").stdout
    assert f"demo 的 shim（pid {server['shim_pid']}）已不在：`mcpctl stop` 结束了它留下的进程" in shown
    monkeypatch.delenv("MCPCTL_LANG")

    pidfile.unlink()
    server = start_ready(env)
    wait_for(pidfile.read_text)
    stopping = subprocess.Popen([sys.executable, "-m", "mcpctl", "stop", "demo", "--json"], cwd=env.workdir,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: env.record("demo").get("state") == "stopping")
    os.kill(int(server["shim_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    out, _ = stopping.communicate(timeout=60)
    stopped = json.loads(out)["results"][0]
    assert stopped["leftovers_ended"] >= 1
    assert float(stopped["elapsed_s"]) >= 2.9
    # What the stop did is the record's last error, naming the shim it found gone (it said "pid None").
    said = env.status("demo")["last_error"]["message"]
    assert said == f"the shim of demo (pid {server['shim_pid']}) was gone; `mcpctl stop` ended what it left " + (
        f"({stopped['leftovers_ended']} process(es))"
    )


def test_a_server_a_lost_shim_left_running_is_said_while_it_runs_and_never_after(env: Env) -> None:
    """The claim that a server runs unattended is made from /proc at each look, not kept in the record: once
    `stop` ended that server, nothing says it still runs (the record said so for good, and told the user to
    run the stop they had just run)."""
    env.write_config({"demo": {"command": "sh", "args": ["-c", f"{sys.executable} {TINY}; exec sleep 600"]}})
    server = start_ready(env)  # sh outlives the shim: the tiny server exits on EOF, then sh sleeps on
    os.kill(int(server["shim_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    wait_for(lambda: not alive(int(server["shim_pid"])))  # type: ignore[call-overload]
    for _ in range(2):  # the look that judges the shim lost, and a later one
        status = env.status("demo")
        assert status["last_error"]["type"] == "shim_lost"
        assert "still running" not in status["last_error"]["message"]
        assert f"server pid {server['pid']} of demo is still running unattended" in status["warning"]
    stopped = env.json("stop", "demo")["results"][0]
    assert stopped["leftovers_ended"] == 1
    assert not alive(int(server["pid"]))  # type: ignore[call-overload]
    status = env.status("demo")
    assert status["warning"] is None
    assert "still running" not in json.dumps(status)


def test_start_after_a_killed_shim_cleans_leftovers_first(env: Env) -> None:
    pidfile = grandchild_config(env)
    server = start_ready(env)
    grandchild = int(wait_for(pidfile.read_text))
    os.kill(int(server["shim_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    wait_for(lambda: env.status("demo")["shim_pid"] is None)
    pidfile.unlink()
    start_ready(env)
    assert not alive(grandchild)
    wait_for(pidfile.exists)
    assert len(env.servers_running("grandchild")) == 1


def test_kill_9_of_the_server_shows_it_exited(env: Env) -> None:
    env.write_config({"demo": tiny_server(restart="never")})
    server = start_ready(env)
    os.kill(int(server["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    status = settle(env, "demo", lambda s: s.get("state") == "failed")
    assert status["pid"] is None
    assert status["last_exit_code"] == -9
    assert status["last_error"]["type"] == "crashed"
    assert "SIGKILL" in status["last_error"]["message"]
    assert status["total_failures"] == 1
    assert env.our_processes() == []
    start_ready(env)


def test_server_that_dies_later_is_reported(env: Env) -> None:
    env.write_config({"demo": fixture_server("die-after", env={"DIE_AFTER": "1"}, restart="never")})
    start_ready(env)
    status = settle(env, "demo", lambda s: s.get("state") == "failed", timeout=15)
    assert status["last_exit_code"] == 9
    assert status["last_error"]["type"] == "crashed"


def test_a_reused_pid_is_never_reported_or_signalled(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    start_ready(env)
    assert env.run("stop", "demo").returncode == 0
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # Forge the record: it claims a live shim and server whose PIDs are now someone else's.
        path = env.state_file("demo")
        record = json.loads(path.read_text())
        record.update(state="ready", pid=bystander.pid, shim_pid=bystander.pid, pid_create_time=time.time() - 1000)
        path.write_text(json.dumps(record))
        status = env.status("demo")
        assert status["state"] == "stopped"
        assert status["pid"] is None
        assert env.run("stop", "demo").returncode == 0
        assert env.run("start", "demo").returncode == 0
        assert bystander.poll() is None  # never signalled
        assert env.status("demo")["pid"] != bystander.pid
    finally:
        bystander.kill()
        bystander.wait()


def test_corrupt_state_file_is_a_warning_and_is_rebuilt(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    env.paths.ensure_server("demo")  # private, as mcpctl makes them: a dir others can read is not repaired into
    for damage in (b"", b'{"schema": 1, "name": "de', b"\x00\x01\xff", b'{"schema": 7}'):
        env.state_file("demo").write_bytes(damage)
        proc = env.run("status")
        assert proc.returncode == 0
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1, proc.stderr
        assert "corrupt" in warnings[0]
        assert "stopped" in proc.stdout
        assert json.loads(env.state_file("demo").read_text())["state"] == "stopped"  # rebuilt
        kept = sorted(env.state_file("demo").parent.glob("state.json.corrupt-*"))
        assert kept
        assert kept[-1].read_bytes() == damage  # the damaged file, kept as doctor --fix keeps it


def test_corrupt_state_of_a_running_server_is_rebuilt_by_its_shim(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    server = start_ready(env)
    env.state_file("demo").write_bytes(b"garbage")
    proc = env.run("status", "demo", "--json")
    assert proc.returncode == 0
    assert "warning:" not in proc.stdout
    status = json.loads(proc.stdout)["servers"][0]
    assert (status["state"], status["pid"]) == ("ready", server["pid"])
    assert status["warning"]
    assert json.loads(env.state_file("demo").read_text())["state"] == "ready"
    # The warning names the file the damaged bytes are kept in, and it is there: the shim wrote over
    # state.json, so a copy of what was read is what is kept.
    kept = sorted(env.state_file("demo").parent.glob("state.json.corrupt-*"))
    assert [k.read_bytes() for k in kept] == [b"garbage"]
    assert f"the damaged file is kept as {kept[0].name}" in status["warning"]
    assert "rebuilt from the running processes" not in status["warning"]


def test_a_running_shims_answer_is_taken_only_while_its_file_is_its_own(env: Env) -> None:
    # status takes a live shim's answer without reading its record back only while the file on disk is
    # a record of that same shim (unit-tested in tests/unit/test_observe.py): one another process wrote
    # over it is put right by the shim, however soon the answer came.
    env.write_config({"demo": tiny_server()})
    server = start_ready(env)
    foreign = json.loads(env.state_file("demo").read_text())
    foreign.update(shim_pid=1, pid=1, state="stopped")
    env.state_file("demo").write_text(json.dumps(foreign))
    status = env.status("demo")
    assert (status["state"], status["pid"], status["shim_pid"]) == ("ready", server["pid"], server["shim_pid"])
    on_disk = json.loads(env.state_file("demo").read_text())
    assert (on_disk["state"], on_disk["shim_pid"]) == ("ready", server["shim_pid"])


def test_unwritable_state_dir_is_a_one_line_error(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    blocker = env.workdir / "not-a-dir"
    blocker.write_text("")
    proc = subprocess.run(
        [sys.executable, "-m", "mcpctl", "--home", str(blocker / "home"), "start", "demo"],
        cwd=env.workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: refusing {blocker}: it is not a directory")  # the file in the way
    assert "Traceback" not in proc.stderr
    assert "hint:" in proc.stderr


def test_no_zombies_are_left_in_the_shim(env: Env) -> None:
    pidfile = grandchild_config(env, restart="never")
    server = start_ready(env)
    grandchild = int(wait_for(pidfile.read_text))
    os.kill(int(server["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    # The shim notices, ends the re-parented grandchild too, reaps everything, and exits.
    wait_for(lambda: not alive(int(server["shim_pid"])))  # type: ignore[call-overload]
    assert not alive(grandchild)
    for proc in psutil.process_iter(["ppid", "status"]):
        if proc.info["ppid"] == server["shim_pid"]:
            assert proc.info["status"] != psutil.STATUS_ZOMBIE
