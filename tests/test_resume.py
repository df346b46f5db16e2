"""`mcpctl resume` after a simulated reboot: every shim and server SIGKILLed, then resume."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY, Env, settle, tiny_server, wait_for


def _kill_everything(env: Env) -> None:
    """A reboot, as far as mcpctl can tell: every shim and server gone at once, no record updated."""
    for proc in env.our_processes():
        proc.kill()
    wait_for(lambda: not env.our_processes(), timeout=30)


def test_resume_starts_exactly_the_servers_that_were_running(env: Env) -> None:
    env.write_config({name: tiny_server() for name in ("a", "b", "c", "never")})
    assert env.run("start", "a", "b", "c").returncode == 0
    assert env.run("stop", "c").returncode == 0  # a person's stop: resume must leave it alone
    _kill_everything(env)
    assert env.record("a")["state"] == "ready"  # the records still say what they said before the "reboot"
    proc = env.run("resume", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["name"] for r in json.loads(proc.stdout)["results"]) == ["a", "b"]
    for name in ("a", "b"):
        assert settle(env, name, lambda s: s.get("state") == "ready")["pid"]
    for name in ("c", "never"):
        assert env.status(name)["state"] == "stopped"
    assert len(env.running(TINY)) == 2
    again = env.run("resume")  # idempotent: the running ones are joined, nothing starts twice
    assert again.returncode == 0
    assert len(env.running(TINY)) == 2


def test_a_crash_keeps_the_wish_and_an_old_record_counts_as_wanted_when_live(env: Env) -> None:
    env.write_config({"a": tiny_server(), "old": tiny_server()})
    assert env.run("start", "a", "old").returncode == 0
    (env.paths.server_dir("old") / "wanted.json").unlink()  # a state dir from before wanted.json
    _kill_everything(env)
    proc = env.run("resume", "--json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["name"] for r in json.loads(proc.stdout)["results"]) == ["a", "old"]
    assert env.run("stop", "--all").returncode == 0
    nothing = env.run("resume")
    assert nothing.returncode == 0
    assert "nothing to resume" in nothing.stdout
    assert env.running(TINY) == []


def test_a_start_that_spawns_nothing_still_records_the_wish(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wish is written while spawned shims boot; a start that spawns none (its environment is wrong) writes it at
    the end, so resume, once the environment is right, starts what the person asked for."""
    env.write_config({"a": tiny_server(), "keyed": tiny_server(required_env=["MCPCTL_TEST_RESUME_KEY"])})
    assert env.run("start", "a").returncode == 0
    assert env.run("stop", "a").returncode == 0
    refused = env.run("start", "keyed")
    assert refused.returncode == 7, refused.stderr  # env_missing
    assert json.loads((env.paths.server_dir("keyed") / "wanted.json").read_text())["wanted"] == "running"
    assert json.loads((env.paths.server_dir("a") / "wanted.json").read_text())["wanted"] == "stopped"
    monkeypatch.setenv("MCPCTL_TEST_RESUME_KEY", "set")
    proc = env.run("resume", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["name"] for r in json.loads(proc.stdout)["results"]] == ["keyed"]
    assert env.status("a")["state"] == "stopped"
    assert len(env.running(TINY)) == 1
