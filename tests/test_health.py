"""The ping loop: a fake clock for the arithmetic, SIGSTOPped real servers for the behaviour; `check`."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from mcpctl.health import Pinger
from tests.conftest import Env, settle, tiny_server

FAST_HEALTH = {"health_interval": 0.2, "health_timeout": 0.3, "unhealthy_after": 2}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pinger_sends_on_interval_and_measures_latency() -> None:
    clock, sent = Clock(), []
    pinger = Pinger(sent.append, interval=10, timeout=2, clock=clock)
    assert pinger.tick() is None
    assert sent == []
    clock.now += 10
    pinger.tick()
    assert sent[0]["method"] == "ping"
    clock.now += 0.05
    health = pinger.answer({"jsonrpc": "2.0", "id": sent[0]["id"], "result": {}})
    assert health is not None
    assert health.ok
    assert health.latency_ms == 50.0
    assert pinger.answer({"jsonrpc": "2.0", "id": sent[0]["id"], "result": {}}) is None  # answered once only


def test_pinger_counts_timeouts_and_errors_until_an_answer() -> None:
    clock, sent = Clock(), []
    pinger = Pinger(sent.append, interval=1, timeout=0.5, clock=clock)
    results = []
    for _ in range(3):
        clock.now += 1
        pinger.tick()
        clock.now += 0.5
        results.append(pinger.tick())
    assert [(h.ok, h.consecutive_failures) for h in results if h] == [(False, 1), (False, 2), (False, 3)]
    clock.now += 1
    pinger.tick()
    error = pinger.answer({"jsonrpc": "2.0", "id": sent[-1]["id"], "error": {"code": -32603, "message": "nope"}})
    assert error is not None
    assert (error.ok, error.consecutive_failures, error.detail) == (False, 4, "ping error: nope")
    clock.now += 1
    pinger.tick()
    ok = pinger.answer({"jsonrpc": "2.0", "id": sent[-1]["id"], "result": {}})
    assert ok is not None
    assert (ok.ok, ok.consecutive_failures) == (True, 0)
    clock.now += 1
    pinger.tick()  # a server of an era without ping answers "method not found": it answered, so it lives
    unknown = pinger.answer({"jsonrpc": "2.0", "id": sent[-1]["id"], "error": {"code": -32601, "message": "no ping"}})
    assert unknown is not None
    assert (unknown.ok, unknown.consecutive_failures) == (True, 0)


def status(env: Env, name: str) -> dict[str, Any]:
    return env.status(name)


def test_a_healthy_server_reports_ping_latency(env: Env) -> None:
    env.write_config({"demo": tiny_server(**FAST_HEALTH)})
    assert env.run("start", "demo").returncode == 0
    health = settle(env, "demo", lambda s: s.get("health"))["health"]
    assert health["ok"] is True
    assert 0 < health["latency_ms"] < 1000
    assert health["consecutive_failures"] == 0
    check = env.run("check", "demo")
    assert check.returncode == 0
    assert check.stdout.startswith("demo: ok (ready, ping ")


def test_a_stopped_server_is_restarted_as_unhealthy(env: Env) -> None:
    env.write_config({"demo": tiny_server(**FAST_HEALTH, backoff_base=0.2)})
    assert env.run("start", "demo").returncode == 0
    first = status(env, "demo")["pid"]
    os.kill(first, signal.SIGSTOP)
    try:
        after = settle(env, "demo", lambda s: s.get("restarts", 0) >= 1 and s.get("state") == "ready", timeout=30)
    finally:
        if _alive(first):
            os.kill(first, signal.SIGCONT)
    assert after["pid"] != first
    assert after["last_error"] is None  # ready again: no error to show; the history is last_failure
    assert after["last_failure"]["type"] == "unhealthy"
    assert after["total_failures"] == 1
    assert not _alive(first)
    journal = (env.paths.servers / "demo" / "events.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["event"] for line in journal]
    assert "unhealthy" in kinds
    assert kinds.index("unhealthy") < kinds.index("restarted")


def test_unhealthy_without_restart_is_exit_6_and_recovers(env: Env) -> None:
    env.write_config({"demo": tiny_server(**FAST_HEALTH, restart_on_unhealthy=False), "idle": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    pid = status(env, "demo")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        settle(env, "demo", lambda s: s.get("state") == "unhealthy")
        check = env.run("check", "demo")
        assert check.returncode == 6
        assert "demo: unhealthy (no answer to ping" in check.stdout
        report = env.json("check", "demo", expect=6)
        assert report["ok"] is False
        assert report["servers"][0]["status"] == "unhealthy"
        nagios = env.run("check", "--nagios", "demo")
        assert nagios.returncode == 1  # it still serves, badly: WARNING
        assert nagios.stdout.startswith("MCPCTL WARNING - demo unhealthy: no answer to ping")
        both = env.run("check", "--nagios")  # and idle was never started: CRITICAL, the worst named first
        assert both.returncode == 2
        assert both.stdout.startswith("MCPCTL CRITICAL - idle not_running: stopped; demo unhealthy: no answer")
        assert "unhealthy" in env.run("status").stdout
        assert env.run("status", "demo").returncode == 0  # still running, only not healthy
    finally:
        os.kill(pid, signal.SIGCONT)
    settle(env, "demo", lambda s: s.get("state") == "ready")
    assert status(env, "demo")["pid"] == pid
    assert env.run("check", "demo").returncode == 0
    nagios = env.run("-q", "check", "--nagios", "demo")  # the plugin's line even under -q: it is what the monitor shows
    assert (nagios.returncode, nagios.stdout) == (0, "MCPCTL OK - 1 server(s) ready\n")


def test_check_of_a_stopped_server_is_exit_3_and_starts_nothing(env: Env) -> None:
    env.write_config({"demo": tiny_server(), "other": tiny_server()})
    assert env.run("start", "other").returncode == 0
    proc = env.run("check", "--all")
    assert proc.returncode == 3
    assert "demo: not running (stopped)" in proc.stdout
    assert env.status("demo")["state"] == "stopped"
    nagios = env.run("check", "--nagios")
    assert nagios.returncode == 2
    assert nagios.stdout == "MCPCTL CRITICAL - demo not_running: stopped\n"


def test_check_nagios_is_unknown_when_it_cannot_check(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    for args, line in (
        (("nope",), "MCPCTL UNKNOWN - unknown server 'nope'"),  # the hot path's
        (("--bogus",), "MCPCTL UNKNOWN - No such option: --bogus"),  # the typer app's
        (("bad name",), "MCPCTL UNKNOWN - unknown server 'bad name': not a server name"),  # an argument's check
        (("../x",), "MCPCTL UNKNOWN - unknown server '../x': not a server name"),
    ):
        proc = env.run("check", "--nagios", *args)
        assert proc.returncode == 3, (args, proc.stdout, proc.stderr)
        assert proc.stdout.startswith(line), proc.stdout
        assert proc.stderr.startswith("error: ")  # with its hint, for the person reading cron's mail
    as_json = env.run("check", "--nagios", "--json", "nope")
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout)["error"]["type"] == "unknown_server"
    assert env.run("check", "--bogus").returncode == 2  # without --nagios, a usage error as ever
    assert env.run("check", "bad name").returncode == 8  # and a name that is no name, exit 8
    env.config.write_text("[servers.demo\n")
    broken = env.run("check", "--nagios")
    assert broken.returncode == 3
    assert broken.stdout.startswith(f"MCPCTL UNKNOWN - {env.config}: invalid TOML")
    env.config.write_text('project = "p"\n')
    empty = env.run("check", "--nagios")
    assert (empty.returncode, empty.stdout) == (3, f"MCPCTL UNKNOWN - {env.config} has no servers to check\n")


def test_check_of_nothing_fails_when_no_config_is_found_or_it_has_no_servers(env: Env) -> None:
    """A cron check run in the wrong directory, or against an empty config, must not pass: nothing is no OK."""
    for args in ((), ("--all",), ("--json",)):
        nowhere = env.run("check", *args)  # nothing written: no config above the directory
        assert nowhere.returncode == 2, (args, nowhere.stdout, nowhere.stderr)
        # Where it looked and how to make one; not "no config file is known for project 'w' (no record of its
        # servers names one ...)", "run the command in the project's directory": a new user is in it.
        error, hint = nowhere.stderr.splitlines()[-2:]
        assert error.startswith(f"error: no mcpctl.toml found in {env.workdir} or a folder above it, nor in "), error
        assert hint == "hint: run `mcpctl init` to create one here, or pass -f PATH"
        assert '"ok": true' not in nowhere.stdout
    named = env.run("--project", "elsewhere", "check")  # a project named: its records could have named a config
    assert named.returncode == 2
    assert "no config file is known for project 'elsewhere'" in named.stderr
    env.config.write_text('project = "p"\n')
    for args in ((), ("--all",)):
        empty = env.run("check", *args)
        assert empty.returncode == 2, (args, empty.stdout, empty.stderr)
        assert empty.stderr.splitlines()[0] == f"error: {env.config} has no servers to check"
    as_json = env.json("check", expect=2)
    assert (as_json["error"]["type"], as_json["error"]["exit_code"]) == ("config_invalid", 2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
