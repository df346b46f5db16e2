"""Judgments that were wrong (issue 15): a shell's "not found", a made-up protocol version, a stale error,
each server's own "ready in", a port another process holds."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.conftest import FIXTURE, TINY, Env, fixture_server, settle, tiny_server, wait_for


def test_a_shell_wrappers_not_found_fails_at_once_without_retries(env: Env) -> None:
    env.write_config({"amap": {"command": "sh", "args": ["-c", "mcp-nonexistent-xyz"], "backoff_base": 0.1}})
    proc = env.run("start", "amap", "--json")
    assert proc.returncode == 4, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["error"]["type"] == "command_not_found"
    assert "127" in result["error"]["message"]
    assert "mcp-nonexistent-xyz" in result["error"]["message"]
    assert result["error"]["hint"]
    status = env.status("amap")
    assert status["state"] == "failed"
    assert status["consecutive_failures"] == 1  # no retries, no crash loop
    assert status["restarts"] == 0


@pytest.mark.parametrize("version", ['"1999-01-01"', "123", "null"])
def test_an_unknown_protocol_version_is_not_ready(env: Env, version: str) -> None:
    env.write_config({"odd": tiny_server(args=[str(TINY), "--protocol-version", version])})
    proc = env.run("start", "odd", "--json")
    assert proc.returncode == 4, proc.stdout
    error = json.loads(proc.stdout)["results"][0]["error"]
    assert error["type"] == "protocol_error"
    assert "protocolVersion" in error["message"]
    assert version in error["message"]
    assert "MCP version" in error["hint"]
    assert env.status("odd")["state"] == "failed"


def test_a_known_protocol_version_is_ready(env: Env) -> None:
    env.write_config({"old": tiny_server(args=[str(TINY), "--protocol-version", '"2024-11-05"'])})
    assert env.run("start", "old").returncode == 0


def test_a_ready_server_shows_no_stale_error_but_keeps_its_last_failure(env: Env) -> None:
    ok_file = env.workdir / "ok"
    env.write_config({"demo": fixture_server("crash-unless-file", env={"OK_FILE": str(ok_file)}, backoff_base=0.5)})
    assert env.run("start", "demo").returncode == 4  # crashed; the shim retries
    failed = env.status("demo")
    assert failed["last_error"]["type"] == "exited_during_startup"
    assert failed["last_failure"]["message"] == failed["last_error"]["message"]
    ok_file.touch()
    ready = settle(env, "demo", lambda s: s.get("state") == "ready", timeout=30)
    assert ready["last_error"] is None
    assert ready["last_failure"]["type"] == "exited_during_startup"
    assert ready["last_failure"]["time"] < ready["ready_at"]
    table = env.run("status").stdout.splitlines()
    assert table[0].split()[-2:] == ["LAST", "ERROR"]
    assert "exited" not in table[1]
    assert table[1].split()[1] == "ready"
    events = [json.loads(line)["event"] for line in env.run("events", "demo", "--json").stdout.splitlines()]
    assert "exited" in events  # the history stays


def test_a_clean_stop_and_a_persons_start_clear_the_error_status_shows(env: Env) -> None:
    """A failure fixed and followed by clean runs and stops is history: status named it as the current error of
    the stopped server (and of a later start meanwhile) minutes after, as the record's last_error was never cleared."""
    ok_file = env.workdir / "ok"
    env.write_config({"demo": fixture_server("crash-unless-file", env={"OK_FILE": str(ok_file)}, restart="never")})
    assert env.run("start", "demo").returncode == 4
    assert env.status("demo")["last_error"]["type"] == "exited_during_startup"
    ok_file.touch()
    for command in (("start",), ("stop",), ("start", "--no-wait"), ("restart",), ("stop",)):
        assert env.run(*command, "demo").returncode == 0, command
        status = env.status("demo")
        assert status["last_error"] is None, (command, status)
        assert status["last_failure"]["type"] == "exited_during_startup"  # the history stays
        assert "exited" not in env.run("status", "demo").stdout, command
    assert env.status("demo")["state"] == "stopped"
    ok_file.unlink()
    assert env.run("start", "demo").returncode == 4  # a new failure is the current error again
    assert env.status("demo")["last_error"]["type"] == "exited_during_startup"


def test_start_all_prints_each_servers_own_ready_in(env: Env) -> None:
    env.write_config(
        {
            "fast": tiny_server(),
            "slow": fixture_server("log-ready", readiness="log", ready_pattern="listening", env={"READY_DELAY": "4"}),
        }
    )
    results = {r["name"]: r for r in env.json("start", "--all")["results"]}
    fast, slow = results["fast"]["elapsed_s"], results["slow"]["elapsed_s"]
    assert slow >= 4.0
    assert fast < slow - 2.0, (fast, slow)  # not the batch's wall time
    text = env.run("restart", "--all").stdout
    said = dict(re.findall(r"^(\w+): ready in ([\d.]+)s", text, re.M))
    assert float(said["fast"]) < float(said["slow"]) - 2.0, text


def test_start_timeout_bounds_only_the_commands_wait(env: Env) -> None:
    slow = fixture_server("log-ready", readiness="log", ready_pattern="listening", env={"READY_DELAY": "2.5"})
    env.write_config({"slow": {**slow, "startup_timeout": 30}})
    began = time.monotonic()
    proc = env.run("start", "slow", "--timeout", "0.5", "--json")
    assert proc.returncode == 4, proc.stdout
    assert time.monotonic() - began < 10
    error = json.loads(proc.stdout)["results"][0]["error"]
    assert "--timeout 0.5s" in error["message"]
    ready = settle(env, "slow", lambda s: s.get("state") == "ready", timeout=30)  # its own startup_timeout holds
    assert ready["consecutive_failures"] == 0
    assert ready["restarts"] == 0


def test_the_first_cooldown_is_cooldown_base_and_a_config_change_ends_it(env: Env) -> None:
    crashing = fixture_server("crash", max_failures=2, backoff_base=0.1, cooldown_base=30, cooldown_max=3600)
    env.write_config({"demo": crashing})
    assert env.run("start", "demo").returncode == 4
    first = settle(env, "demo", lambda s: s.get("state") == "failed", timeout=30)
    assert 15 < first["retry_in_s"] <= 30  # cooldown_base, not 30 * 2^(max_failures - 1)
    assert env.run("start", "demo").returncode == 5  # skipped: cooling down
    assert env.run("start", "demo", "--force").returncode == 4  # the next crash loop doubles it
    second = settle(env, "demo", lambda s: s.get("state") == "failed", timeout=30)
    assert 45 < second["retry_in_s"] <= 60
    env.write_config({"demo": {**crashing, **tiny_server()}})  # fixed: a new config hash
    proc = env.run("start", "demo")
    assert proc.returncode == 0, proc.stderr
    assert env.status("demo")["state"] == "ready"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _stealer(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The fixture HTTP server, started outside mcpctl, listening on `port`."""
    proc = subprocess.Popen(
        [sys.executable, str(FIXTURE), "http"],
        env={**os.environ, "FIXTURE_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_an_http_server_whose_port_is_taken_is_refused_with_the_holder_named(env: Env) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env.write_config({"web": fixture_server("http", url=url, env={"FIXTURE_PORT": str(port)}, backoff_base=0.1)})
    with _stealer(port) as other:
        wait_for(lambda: _listening(port), timeout=30)
        proc = env.run("start", "web", "--json")
        assert proc.returncode == 4, proc.stdout
        error = json.loads(proc.stdout)["results"][0]["error"]
        assert error["type"] == "port_in_use"
        assert "of its url is already in use" in error["message"]  # the port itself is masked: an env value here
        assert f"pid {other.pid}" in error["message"]
        assert "another port" in error["hint"]
        status = env.status("web")
        assert status["state"] == "failed"
        assert status["consecutive_failures"] == 1  # no retries, no crash loop
        assert status["restarts"] == 0


def test_the_port_holders_name_is_escaped_in_the_refusal(env: Env) -> None:
    # A process names itself (its comm) anything: the refusal that names it must not drive the terminal.
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env.write_config({"web": fixture_server("http", url=url, env={"FIXTURE_PORT": str(port)}, backoff_base=0.1)})
    rename = "open('/proc/self/comm', 'w').write('\\x1b[31mRED\\u202e')"
    run = f"import runpy, sys; sys.argv = [{str(FIXTURE)!r}, 'http']; sys.path.insert(0, {str(FIXTURE.parent)!r})"
    run += "; runpy.run_path(sys.argv[0], run_name='__main__')"
    other = subprocess.Popen([sys.executable, "-c", f"{rename}; {run}"], env={**os.environ, "FIXTURE_PORT": str(port)})
    try:
        wait_for(lambda: _listening(port), timeout=30)
        proc = env.run("start", "web")
        assert proc.returncode == 4, proc.stdout
        shown = proc.stdout + proc.stderr
        assert not {"\x1b", "\u202e"} & set(shown)
        assert f"pid {other.pid} (\\x1b[31mRED\\u202e)" in shown
    finally:
        other.kill()
        other.wait()


def test_an_http_server_is_ready_only_when_our_tree_owns_the_socket(env: Env) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    # Ours binds late (after 8 s); a stranger takes the port meanwhile and answers the handshake.
    late = f"sleep 8; exec {sys.executable} {FIXTURE} http"
    env.write_config({"web": {"command": "sh", "args": ["-c", late], "url": url, "env": {"FIXTURE_PORT": str(port)},
                              "startup_timeout": 30, "stop_timeout": 2}})  # fmt: skip
    starting = subprocess.Popen([sys.executable, "-m", "mcpctl", "start", "web", "--json"], cwd=env.workdir,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: env.record("web").get("state") == "starting", timeout=30)
    with _stealer(port):
        out, _ = starting.communicate(timeout=60)
    assert starting.returncode == 4, out
    error = json.loads(out)["results"][0]["error"]
    assert error["type"] == "port_in_use"
    assert env.status("web")["state"] == "failed"
