"""A start that did not reach MCP-ready is exit 4 with the error type, the exit code and stderr's tail."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import Env, fixture_server, tiny_server


def failed_start(env: Env, server: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Start a broken server twice (human, then --json); `restart = "never"` so each start is final."""
    env.write_config({"bad": {"restart": "never", **server}})
    human = env.run("start", "bad")
    assert human.returncode == 4, (human.stdout, human.stderr)
    assert human.stderr.startswith("error: bad did not become ready")
    assert "hint: " in human.stderr
    result = env.json("start", "bad", expect=4)["results"][0]
    assert result["ok"] is False
    assert result["outcome"] == "failed"
    assert env.our_processes() == []  # nothing of a failed start is left running
    return result, human.stderr


def test_crash_at_start_reports_exit_code_and_stderr(env: Env) -> None:
    result, text = failed_start(env, fixture_server("crash"))
    assert result["error"]["type"] == "exited_during_startup"
    assert "exit code 3" in result["error"]["message"]
    assert result["server"]["last_exit_code"] == 3
    assert any("fatal: something went wrong" in line for line in result["stderr_tail"])
    assert "| fatal: something went wrong at start" in text
    status = env.status("bad")
    assert status["state"] == "failed"
    assert status["last_error"]["type"] == "exited_during_startup"
    assert status["total_failures"] == 2  # both starts counted


def test_a_crash_at_start_quotes_the_stderr_of_the_process_that_failed_once(env: Env) -> None:
    """A server that exits before answering the server/discover probe is spawned once more, pinned to the
    legacy era; the failure quotes the stderr of the process it reports, not both processes' lines as one
    tail (the same crash's line twice). The log keeps both, with the respawn between them."""
    env.write_config({"bad": fixture_server("crash", restart="never")})
    result = env.json("start", "bad", expect=4)["results"][0]
    tail = result["stderr_tail"]
    assert [line.split(", pid")[0] for line in tail] == [
        "fixture crash starting",
        "fatal: something went wrong at start",
    ]
    log = (env.paths.logs / "bad.log").read_text()
    assert log.count("fatal: something went wrong at start") == 2
    assert tail[0] in log.split("spawning it once more, pinned")[1]  # the second process's pid
    assert log.index("spawning it once more, pinned") < log.rindex("fatal: something went wrong at start")


def test_exit_zero_during_start_is_still_a_failure(env: Env) -> None:
    result, _ = failed_start(env, fixture_server("exit0"))
    assert result["error"]["type"] == "exited_during_startup"
    assert result["server"]["last_exit_code"] == 0


def test_hang_in_initialize_times_out(env: Env) -> None:
    result, _ = failed_start(env, fixture_server("hang", startup_timeout=1.5, stop_timeout=1))
    assert result["error"]["type"] == "handshake_timeout"
    assert "1.5s" in result["error"]["message"]
    assert "startup_timeout" in result["error"]["hint"]


def test_a_silent_server_fails_within_its_startup_timeout_and_the_log_says_the_shim_ended_it(env: Env) -> None:
    """startup_timeout bounds the whole start, the server/discover probe's silence included, until the
    failure is recorded: a server that never became ready (`sleep` reads nothing) is not given the 2 s that
    a session's end gets after its stdin is closed, which made `startup_timeout = 1` fail after 3 s."""
    env.write_config({"silent": {"command": "sleep", "args": ["100"], "startup_timeout": 1, "restart": "never"}})
    result = env.json("start", "silent", expect=4)["results"][0]
    assert result["error"]["type"] == "handshake_timeout"
    lines = (env.paths.servers / "silent" / "events.jsonl").read_text().splitlines()
    happened = {event["event"]: event["mono"] for event in map(json.loads, lines)}
    assert 1.0 <= happened["failed"] - happened["started"] < 2.5  # the promised deadline, with room for a busy machine
    log = (env.paths.logs / "silent.log").read_text()
    assert "ending the server: silent was not ready within 1s\n" in log
    assert log.index("ending the server") < log.index("server exited: killed by SIGTERM")


def test_timeout_option_bounds_the_wait_not_the_startup_timeout(env: Env) -> None:
    env.write_config({"bad": fixture_server("hang", startup_timeout=300, stop_timeout=1, restart="never")})
    result = env.json("start", "bad", "--timeout", "1", expect=4)["results"][0]
    assert result["error"]["type"] == "handshake_timeout"
    assert result["elapsed_s"] < 30
    assert env.status("bad")["state"] == "starting"  # its shim goes on by startup_timeout = 300


def test_garbage_on_stdout_is_a_protocol_error(env: Env) -> None:
    result, _ = failed_start(env, fixture_server("garbage"))
    assert result["error"]["type"] == "protocol_error"
    assert "hello, I am not JSON-RPC" in result["error"]["message"]


def test_missing_command_is_command_not_found(env: Env) -> None:
    result, text = failed_start(env, {"command": "mcpctl-no-such-binary-here"})
    assert result["error"]["type"] == "command_not_found"
    assert "mcpctl-no-such-binary-here" in text


def test_missing_cwd_is_a_spawn_failure(env: Env) -> None:
    result, _ = failed_start(env, fixture_server("healthy", cwd="does/not/exist"))
    assert result["error"]["type"] == "spawn_failed"
    assert "does/not/exist" in result["error"]["message"]


def test_one_failure_does_not_hide_the_others(env: Env) -> None:
    env.write_config({"good": tiny_server(), "bad": fixture_server("crash", restart="never")})
    proc = env.run("start", "--all", "--json")
    assert proc.returncode == 4
    results = {r["name"]: r["ok"] for r in json.loads(proc.stdout)["results"]}
    assert results == {"good": True, "bad": False}
    assert proc.stderr.startswith("error: bad did not become ready [exited_during_startup]"), proc.stderr  # stderr too
    assert "good" not in proc.stderr
    report = env.json("status")
    states = {s["name"]: s["state"] for s in report["servers"]}
    assert states == {"good": "ready", "bad": "failed"}


def test_secret_values_do_not_reach_outputs_or_state(env: Env) -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    server = fixture_server("crash", env={"FIXTURE_API_KEY": secret}, restart="never")
    server["args"].append(secret)  # the crash fixture echoes its extra arguments to stderr
    env.write_config({"bad": server})
    outputs = [env.run("start", "bad"), env.run("start", "bad", "--json"), env.run("status", "--json")]
    outputs += [env.run("status"), env.run("list"), env.run("list", "--json")]
    assert "| args: ['***']" in outputs[0].stderr  # the stderr tail is shown, redacted
    for proc in outputs:
        assert secret not in proc.stdout + proc.stderr
    assert secret not in env.state_file("bad").read_text()


def test_simultaneous_starts_of_a_crashing_server_share_its_failure(env: Env) -> None:
    env.write_config({"bad": fixture_server("crash", restart="never")})
    command = [sys.executable, "-m", "mcpctl", "start", "bad"]
    with ThreadPoolExecutor(max_workers=10) as pool:
        runs = list(
            pool.map(lambda _: subprocess.run(command, cwd=env.workdir, capture_output=True, check=False), range(10))
        )
    assert [run.returncode for run in runs] == [4] * 10
    # Callers that found a start under way report its failure instead of trying again themselves.
    assert env.status("bad")["total_failures"] <= 5


def test_a_startup_message_past_max_message_bytes_says_to_raise_it(env: Env) -> None:
    big = "import sys, json; sys.stdin.readline(); print(json.dumps({'jsonrpc': '2.0', 'id': 0, 'pad': 'x' * 70000}))"
    server = {"command": sys.executable, "args": ["-c", big + "; sys.stdout.flush(); import time; time.sleep(60)"]}
    result, text = failed_start(env, {**server, "max_message_bytes": 65536})
    assert result["error"]["type"] == "protocol_error"
    assert "raise max_message_bytes (now 65536) of bad" in result["error"]["hint"]
    assert "only JSON-RPC" not in text
