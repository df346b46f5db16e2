"""Restart policy, backoff, crash loops, cooldown skips and readiness modes, on real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import TINY, Env, fixture_server, settle, tiny_server

FAST = {"backoff_base": 0.2, "backoff_max": 0.5, "max_failures": 3}
# Seconds a die-after server lives: its timer runs from before the handshake, and 0.3 s let it die during
# startup (a start failure, not the crash after ready these tests are about) on a loaded machine.
DIES_SOON = "1.0"


def events(env: Env, name: str) -> list[dict[str, Any]]:
    path = env.paths.servers / name / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def settled(env: Env, name: str, state: str, timeout: float = 20.0) -> dict[str, Any]:
    return settle(env, name, lambda s: s.get("state") == state, timeout=timeout)


def test_crash_loop_backs_off_exponentially_then_stops_in_failed(env: Env) -> None:
    env.write_config({"bad": fixture_server("crash", **FAST)})
    first = env.json("start", "bad", expect=4)["results"][0]
    assert first["error"]["type"] == "exited_during_startup"
    assert first["error"]["retryable"] is True
    assert first["server"]["state"] == "backoff"  # the shim will try again by itself
    assert first["server"]["retry_in_s"] is not None

    status = settled(env, "bad", "failed")
    assert (status["consecutive_failures"], status["total_failures"], status["restarts"]) == (3, 3, 2)
    assert status["last_error"]["type"] == "crash_loop"
    assert "failed 3 times in a row" in status["last_error"]["message"]
    assert "exited during startup" in status["last_error"]["message"]
    assert "--force" in status["last_error"]["hint"]
    assert status["cooldown_until"] is not None
    assert env.our_processes() == []

    # Delays measured from the journal: from each exit to the next start, growing 0.2 -> 0.4 (+ jitter).
    journal = events(env, "bad")
    backoffs = [e["delay_s"] for e in journal if e["event"] == "backoff"]
    assert backoffs[0] == pytest.approx(0.2, abs=0.021)
    assert backoffs[1] == pytest.approx(0.4, abs=0.041)
    exits = [e["mono"] for e in journal if e["event"] == "exited"]
    restarts = [e["mono"] for e in journal if e["event"] == "restarted"]
    gaps = [later - earlier for earlier, later in zip(exits, restarts, strict=False)]
    assert gaps[0] >= 0.2
    assert gaps[1] >= 0.4
    assert gaps[1] > gaps[0]


def test_backoff_is_capped(env: Env) -> None:
    env.write_config({"bad": fixture_server("crash", backoff_base=0.1, backoff_max=0.25, max_failures=5)})
    env.run("start", "bad")
    settled(env, "bad", "failed", timeout=30)
    backoffs = [e["delay_s"] for e in events(env, "bad") if e["event"] == "backoff"]
    assert len(backoffs) == 4
    assert max(backoffs) <= 0.25 * 1.1 + 1e-6
    assert backoffs[-1] >= 0.25


def test_never_does_not_restart(env: Env) -> None:
    env.write_config({"bad": fixture_server("crash", restart="never", **FAST)})
    result = env.json("start", "bad", expect=4)["results"][0]
    assert result["server"]["state"] == "failed"
    assert [e["event"] for e in events(env, "bad")].count("started") == 1
    assert not any(e["event"] == "restarted" for e in events(env, "bad"))
    assert env.status("bad")["retry_in_s"] is None


def test_cooldown_skip_is_exit_5_and_counts_nothing_then_force_starts(env: Env) -> None:
    ok_file = env.workdir / "ok"
    server = fixture_server("crash-unless-file", env={"OK_FILE": str(ok_file)}, cooldown_base=600, **FAST)
    env.write_config({"bad": server})
    env.run("start", "bad")
    before = settled(env, "bad", "failed")
    ok_file.write_text("fixed")

    skipped = env.run("start", "bad")
    assert skipped.returncode == 5, skipped.stderr
    assert skipped.stderr.startswith("skipped: bad is cooling down after 3 failure(s); next try in ")
    assert "hint: use --force to start now" in skipped.stderr
    result = env.json("start", "bad", expect=5)["results"][0]
    assert result["outcome"] == "skipped"
    assert result["error"]["type"] == "cooldown"
    after = env.status("bad")
    assert (after["total_failures"], after["consecutive_failures"]) == (before["total_failures"], 3)
    assert "failed (cooldown " in env.run("status").stdout

    forced = env.run("start", "bad", "--force")
    assert forced.returncode == 0, forced.stderr
    status = env.status("bad")
    assert status["state"] == "ready"
    assert status["consecutive_failures"] == 0  # a successful start resets the count
    assert status["total_failures"] == 3


def test_start_during_backoff_is_a_skip_and_force_retries_now(env: Env) -> None:
    ok_file = env.workdir / "ok"
    server = fixture_server("crash-unless-file", env={"OK_FILE": str(ok_file)}, backoff_base=30, backoff_max=60)
    env.write_config({"bad": server})
    assert env.run("start", "bad").returncode == 4
    status = env.status("bad")
    assert status["state"] == "backoff"
    assert 25 < status["retry_in_s"] <= 33
    assert "backoff (retry in " in env.run("status").stdout

    skipped = env.json("start", "bad", expect=5)["results"][0]
    assert skipped["error"]["message"].startswith("bad is in a backoff after 1 failure(s); next try in ")

    ok_file.write_text("fixed")
    forced = env.json("start", "bad", "--force")["results"][0]
    assert forced["outcome"] == "started"
    status = env.status("bad")
    assert (status["state"], status["consecutive_failures"], status["total_failures"]) == ("ready", 0, 1)
    assert len(env.servers_running()) == 1


def test_a_start_during_backoff_runs_the_config_as_it_is_now(env: Env) -> None:
    """What the failed start's hint says to do works: a raised startup_timeout (read by each command) takes
    effect on `start --force`, and a fixed command on a plain `start` (a changed config is not held back);
    the shim in backoff used to retry with the settings that had failed."""
    slow = ["-c", f"sleep 1.5; exec {sys.executable} {TINY}"]
    server = {"command": "sh", "args": slow, "startup_timeout": 0.5, "backoff_base": 30, "backoff_max": 60}
    env.write_config({"slow": server})
    assert env.run("start", "slow").returncode == 4
    assert env.status("slow")["state"] == "backoff"
    env.write_config({"slow": {**server, "startup_timeout": 20}})
    forced = env.run("start", "slow", "--force")
    assert forced.returncode == 0, forced.stderr
    assert env.status("slow")["state"] == "ready"

    assert env.run("stop", "slow").returncode == 0
    env.write_config({"slow": server})
    assert env.run("start", "slow").returncode == 4
    env.write_config({"slow": {**server, "args": ["-c", f"exec {sys.executable} {TINY}"]}})  # no more sleep
    fixed = env.run("start", "slow")
    assert fixed.returncode == 0, fixed.stderr
    status = env.status("slow")
    assert (status["state"], status["config_changed"]) == ("ready", False)


def test_crash_after_ready_is_restarted_until_the_loop_limit(env: Env) -> None:
    env.write_config({"flaky": fixture_server("die-after", env={"DIE_AFTER": DIES_SOON}, **FAST)})
    assert env.run("start", "flaky").returncode == 0
    status = settled(env, "flaky", "failed", timeout=30)
    assert (status["restarts"], status["total_failures"], status["consecutive_failures"]) == (2, 3, 3)
    assert status["last_exit_code"] == 9
    kinds = [e["event"] for e in events(env, "flaky")]
    assert kinds.count("ready") == 3
    assert kinds[-1] == "failed"


def test_exit_zero_after_ready_is_not_a_failure(env: Env) -> None:
    env.write_config({"done": fixture_server("die-after", env={"DIE_AFTER": DIES_SOON, "DIE_CODE": "0"}, **FAST)})
    assert env.run("start", "done").returncode == 0
    status = settled(env, "done", "stopped")
    assert (status["total_failures"], status["last_exit_code"], status["restarts"]) == (0, 0, 0)


def test_always_restarts_even_after_exit_zero(env: Env) -> None:
    server = fixture_server("die-after", env={"DIE_AFTER": DIES_SOON, "DIE_CODE": "0"}, restart="always", **FAST)
    env.write_config({"again": server})
    assert env.run("start", "again").returncode == 0
    status = settle(env, "again", lambda s: s.get("restarts", 0) >= 2)
    assert status["total_failures"] == 0


def test_healthy_run_of_reset_after_resets_the_count(env: Env) -> None:
    server = fixture_server("die-after", env={"DIE_AFTER": "1.2"}, reset_after=0.4, **FAST)
    env.write_config({"flaky": server})
    assert env.run("start", "flaky").returncode == 0
    settle(env, "flaky", lambda s: s.get("total_failures", 0) >= 4, timeout=30)
    status = env.status("flaky")
    assert status["state"] != "failed"  # 4 crashes, but never 3 in a row without a healthy run between
    assert status["consecutive_failures"] <= 1
    assert any(e["event"] == "reset" for e in events(env, "flaky"))


@pytest.mark.parametrize(
    ("mode", "settings", "expected"),
    [
        ("log-ready", {"readiness": "log", "ready_pattern": r"listening on \S+:\d+"}, None),
        ("hang", {"readiness": "log", "ready_pattern": "never printed", "startup_timeout": 1}, "handshake_timeout"),
        ("crash", {"readiness": "log", "ready_pattern": "listening"}, "exited_during_startup"),
        ("hang", {"readiness": "alive", "ready_after": 0.5}, None),
        ("crash", {"readiness": "alive", "ready_after": 3}, "exited_during_startup"),
    ],
)
def test_readiness_modes(env: Env, mode: str, settings: dict[str, Any], expected: str | None) -> None:
    env.write_config({"svc": fixture_server(mode, restart="never", stop_timeout=1, **settings)})
    result = env.json("start", "svc", expect=4 if expected else 0)["results"][0]
    if expected is None:
        assert result["outcome"] == "started"
        assert env.status("svc")["state"] == "ready"
    else:
        assert result["error"]["type"] == expected


def test_log_readiness_matches_late_lines_and_logs_them(env: Env) -> None:
    server = fixture_server("log-ready", env={"READY_DELAY": "1"}, readiness="log", ready_pattern="listening")
    env.write_config({"svc": server})
    result = env.json("start", "svc")["results"][0]
    assert result["elapsed_s"] >= 1.0
    assert "listening on 127.0.0.1:8931" in (env.paths.logs / "svc.log").read_text()


def test_every_exit_code_from_a_real_situation(env: Env) -> None:
    env.write_config(
        {
            "good": tiny_server(),
            "bad": fixture_server("crash", cooldown_base=600, **FAST),
            "keyless": tiny_server(required_env=["MCPCTL_TEST_UNSET_VARIABLE"]),
        }
    )
    assert env.run("start", "good").returncode == 0  # 0
    assert env.run("start", "nosuch").returncode == 8  # unknown server
    assert env.run("start", "--bogus").returncode == 2  # usage
    assert env.run("status", "bad").returncode == 3  # not running
    assert env.run("start", "bad").returncode == 4  # start failed
    settled(env, "bad", "failed")
    assert env.run("start", "bad").returncode == 5  # skipped: cooldown
    assert env.run("start", "keyless").returncode == 7  # environment missing
    blocker = env.workdir / "file"
    blocker.write_text("")
    assert env.run("--home", str(blocker / "h"), "start", "good").returncode == 1  # internal: unusable state dir
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_STATE_LOCK, str(env.home / "lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        busy = subprocess.run(
            [sys.executable, "-m", "mcpctl", "start", "good"],
            cwd=env.workdir,
            capture_output=True,
            text=True,
            env={**os.environ, "MCPCTL_LOCK_TIMEOUT": "0.3"},
            check=False,
        )
        assert busy.returncode == 9, busy.stderr
        assert "held the state lock" in busy.stderr
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()


HOLD_STATE_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_restart_during_backoff_starts_at_once(env: Env) -> None:
    ok_file = env.workdir / "ok"
    server = fixture_server("crash-unless-file", env={"OK_FILE": str(ok_file)}, backoff_base=30, backoff_max=60)
    env.write_config({"bad": server})
    assert env.run("start", "bad").returncode == 4
    assert env.status("bad")["state"] == "backoff"
    ok_file.write_text("fixed")
    restarted = env.run("restart", "bad")
    assert restarted.returncode == 0, restarted.stderr
    assert env.status("bad")["state"] == "ready"
