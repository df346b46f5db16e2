"""`mcpctl doctor`: planted orphans, stale sockets, damaged records, loose permissions, bad config;
and `stop --all` leaving no process of ours behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil

from tests.conftest import TINY, Env, alive, fixture_server, tiny_server, wait_for


def _kinds(report: dict[str, object]) -> list[str]:
    return sorted(f["kind"] for f in report["findings"])  # type: ignore[attr-defined, index]


def test_doctor_on_a_clean_state_dir(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    proc = env.run("doctor")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == "no problems found"


def test_doctor_finds_and_fixes_what_a_killed_shim_left(env: Env) -> None:
    pidfile = env.workdir / "grandchild.pid"
    env.write_config({"demo": fixture_server("grandchild", env={"GRANDCHILD_PIDFILE": str(pidfile)})})
    assert env.run("start", "demo").returncode == 0
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    shim = env.status("demo")["shim_pid"]
    os.kill(shim, signal.SIGKILL)
    wait_for(lambda: not alive(shim))
    socket_path = env.paths.socket("demo")
    assert socket_path.exists()

    found = env.json("doctor", expect=6)
    assert found["ok"] is False
    kinds = _kinds(found)
    assert "orphan" in kinds
    assert "stale_socket" in kinds
    orphan = next(f for f in found["findings"] if f["kind"] == "orphan" and f["subject"] == str(grandchild))
    assert orphan["fixable"] is True
    assert alive(grandchild)  # looking changes nothing

    fixed = env.json("doctor", "--fix")
    assert fixed["ok"] is True
    assert all(f["fixed"] for f in fixed["findings"])
    assert not alive(grandchild)  # it ignored SIGTERM: SIGKILL ended it
    assert not socket_path.exists()
    assert env.our_processes() == []
    again = env.run("doctor")
    assert again.returncode == 0
    assert again.stdout.strip() == "no problems found"


def test_doctor_escapes_an_orphans_command_line(env: Env) -> None:
    # A server names its child anything it likes: an escape sequence, and a line that forges a verdict.
    script = env.workdir / "naming.sh"
    forged = "\\e[31mRED\\e[0m\\nOK     nothing wrong here\u202e"  # bidi override: raw, not left to bash
    script.write_text(f"(exec -a $'{forged}' sleep 1003) &\nexec {sys.executable} {TINY}\n", encoding="utf-8")
    env.write_config({"demo": {"command": "bash", "args": [str(script)]}})
    assert env.run("start", "demo").returncode == 0
    named = wait_for(lambda: [p for p in env.our_processes() if p.name() == "sleep"])[0]
    shim = env.status("demo")["shim_pid"]
    os.kill(shim, signal.SIGKILL)
    wait_for(lambda: not alive(shim))
    try:
        proc = env.run("doctor")
        assert proc.returncode == 6, proc.stdout
        assert not {"\x1b", "\u202e"} & set(proc.stdout)
        assert not [line for line in proc.stdout.splitlines() if line.startswith("OK")]
        assert f"pid {named.pid} (\\x1b[31mRED\\x1b[0m\\x0aOK     nothing wrong here\\u202e 1003)" in proc.stdout
        found = env.json("doctor", expect=6)
        orphan = next(f for f in found["findings"] if f["subject"] == str(named.pid))
        assert "\\x1b[31mRED" in orphan["detail"]
    finally:
        named.kill()


def test_doctor_ends_a_planted_orphan_but_not_a_live_servers_tree(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    server = env.status("demo")["pid"]
    planted = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "MCPCTL_HOME": str(env.home), "MCPCTL_INSTANCE": "0" * 32},
        start_new_session=True,
    )
    try:
        report = env.json("doctor", "--fix")
        orphans = [f for f in report["findings"] if f["kind"] == "orphan"]
        assert [f["subject"] for f in orphans] == [str(planted.pid)]
        assert planted.wait(timeout=10) == -signal.SIGTERM
        assert alive(server)
        assert env.status("demo")["state"] == "ready"
    finally:
        if planted.poll() is None:
            planted.kill()
            planted.wait()


def test_doctor_rebuilds_a_damaged_record_and_keeps_the_damaged_file(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    assert env.run("stop", "demo").returncode == 0
    state = env.state_file("demo")
    state.write_bytes(b"\x00\xffnot json at all")
    report = env.json("doctor", expect=6)
    assert _kinds(report) == ["corrupt_file"]
    assert env.json("doctor", "--fix")["ok"] is True
    assert json.loads(state.read_text())["state"] == "stopped"
    kept = list(state.parent.glob("state.json.corrupt-*"))
    assert len(kept) == 1
    assert kept[0].read_bytes() == b"\x00\xffnot json at all"


def test_doctor_tightens_a_readable_state_dir(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    env.home.chmod(0o755)
    proc = env.run("doctor")
    assert proc.returncode == 6
    assert "others can read it (--fix repairs it)" in proc.stdout
    assert env.run("doctor", "--fix").returncode == 0
    assert env.home.stat().st_mode & 0o777 == 0o700


def test_doctor_reports_a_broken_config_and_exits_6(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    env.config.write_text("[servers.demo]\ncommand = 42\n")
    proc = env.run("doctor", "--fix")
    assert proc.returncode == 6
    assert "FOUND  config" in proc.stdout
    assert "command" in proc.stdout


def test_stop_all_leaves_no_process_of_ours(env: Env) -> None:
    pidfile = env.workdir / "grandchild.pid"
    env.write_config(
        {
            "plain": tiny_server(),
            # Its grandchild ignores SIGTERM, so the stop waits out stop_timeout before SIGKILL: 1 s, not 10.
            "family": fixture_server("grandchild", env={"GRANDCHILD_PIDFILE": str(pidfile)}, stop_timeout=1),
            "zombie": fixture_server("zombie"),
            "web": {**fixture_server("log-ready"), "readiness": "log", "ready_pattern": "listening on"},
        }
    )
    assert env.run("start", "--all").returncode == 0
    assert len(env.our_processes()) >= 8  # four shims, four servers, a grandchild
    assert env.run("stop", "--all").returncode == 0
    # Every process a shim starts carries MCPCTL_HOME of its state dir (and an instance tag): none may be left.
    home = str(env.home)
    left = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("MCPCTL_HOME") == home and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(proc.cmdline()))
        except (psutil.Error, OSError):
            continue
    assert left == []
    assert env.run("doctor").returncode == 0
