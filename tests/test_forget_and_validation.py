"""`mcpctl forget`, `check` of the config's servers only, and validation of non-finite numbers, bad names and
deeply nested TOML (issue 15 item 16): every bad input is exit 2 with one line."""

from __future__ import annotations

import pytest

from mcpctl.settings import SETTINGS, Kind
from tests.conftest import Env, tiny_server

SECONDS = [setting.name for setting in SETTINGS if setting.kind == Kind.SECONDS]


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_refused_in_every_float_setting(env: Env, value: str) -> None:
    body = '[servers.a]\ncommand = "x"\n' + "".join(f"{name} = {value}\n" for name in SECONDS)
    body += f'[alerts.big]\nmetric = "cpu_percent"\nthreshold = {value}\n'
    env.config.write_text(body)
    proc = env.run("config", "validate")
    assert proc.returncode == 2, proc.stderr
    for name in SECONDS:
        assert f"servers.a.{name}: expected a positive number of seconds, got {value}" in proc.stderr
    assert "big.threshold: expected a number" in proc.stderr
    assert env.run("start", "a").returncode == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_timeout_options_refuse_what_is_not_a_positive_number(env: Env, value: str) -> None:
    env.write_config({"a": tiny_server()})
    for command in (["start", "a"], ["stop", "a"], ["restart", "a"], ["call", "a", "x"], ["ping", "a"]):
        proc = env.run(*command, f"--timeout={value}")
        assert proc.returncode == 2, (command, proc.stderr)
        assert "--timeout" in _one_error_line(proc.stderr)
    assert env.our_processes() == []


def test_lock_timeout_nan_is_a_usage_error(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"a": tiny_server()})
    monkeypatch.setenv("MCPCTL_LOCK_TIMEOUT", "nan")
    proc = env.run("start", "a")
    assert proc.returncode == 2
    assert "MCPCTL_LOCK_TIMEOUT" in _one_error_line(proc.stderr)


@pytest.mark.parametrize("name", ['"a\\n"', '"a b"', '"a/b"', '"-a"', '"a\\u0000"'])
def test_bad_server_names_are_refused(env: Env, name: str) -> None:
    env.config.write_text(f'[servers.{name}]\ncommand = "x"\n')
    proc = env.run("config", "validate")
    assert proc.returncode == 2
    assert "invalid server name" in proc.stderr


def test_deeply_nested_toml_is_exit_2_with_one_line(env: Env) -> None:
    env.config.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    for command in (["config", "validate"], ["start", "--all"], ["status"]):
        proc = env.run(*command)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "nested too deeply" in _one_error_line(proc.stderr)


def test_forget_removes_a_stopped_servers_record_logs_and_events(env: Env) -> None:
    env.write_config({"keep": tiny_server(), "gone": tiny_server()})
    assert env.run("start", "keep", "gone").returncode == 0
    assert env.run("stop", "gone").returncode == 0
    (env.paths.logs / "gone.log.1").write_text("an older generation\n")
    env.write_config({"keep": tiny_server()})  # `gone` left the config
    assert env.run("check").returncode == 0  # the config's servers only: keep is ready
    assert "gone" in env.run("status").stdout  # still known to the state dir
    refused = env.run("forget", "keep", "gone")
    assert refused.returncode == 2
    assert "keep is ready" in _one_error_line(refused.stderr)
    assert "stop it first" in refused.stderr
    assert (env.paths.servers / "gone").exists()  # one refusal removes nothing
    done = env.json("forget", "gone")
    assert [r["name"] for r in done["results"]] == ["gone"]
    assert not (env.paths.servers / "gone").exists()
    assert list((env.paths.logs).glob("gone.log*")) == []
    assert "gone" not in env.run("status").stdout
    assert env.run("events", "gone").returncode == 8  # unknown now
    assert env.status("keep")["state"] == "ready"


def test_forget_all_stopped_skips_running_servers(env: Env) -> None:
    env.write_config({"up": tiny_server(), "down": tiny_server()})
    assert env.run("start", "up", "down").returncode == 0
    assert env.run("stop", "down").returncode == 0
    proc = env.run("forget", "--all-stopped")
    assert proc.returncode == 0, proc.stderr
    assert "down: forgotten" in proc.stdout
    assert "up: kept: it is ready" in proc.stdout
    assert (env.paths.servers / "up" / "state.json").exists()
    assert not (env.paths.servers / "down").exists()
    assert env.status("up")["state"] == "ready"
    assert env.run("forget").returncode == 2
    assert env.run("forget", "nosuch").returncode == 8


def test_check_without_names_ignores_servers_removed_from_the_config(env: Env) -> None:
    env.write_config({"a": tiny_server(), "b": tiny_server()})
    assert env.run("start", "a", "b").returncode == 0
    assert env.run("stop", "b").returncode == 0
    assert env.run("check").returncode == 3  # b is configured and stopped
    env.write_config({"a": tiny_server()})
    assert env.run("check").returncode == 0
    assert env.run("check", "--all").returncode == 0
    assert env.run("check", "b").returncode == 3  # named: still checked


def test_counts_refuse_negative_numbers(env: Env) -> None:
    env.write_config({"a": tiny_server()})
    for command in (["call", "a", "x"], ["ping", "a"], ["tools", "a"]):
        proc = env.run(*command, "--retries=-1")
        assert proc.returncode == 2, (command, proc.stderr)
        assert "--retries" in _one_error_line(proc.stderr)
    proc = env.run("env", "rule", "add", "a", "KEY", "--min-length", "-3")
    assert proc.returncode == 2, proc.stderr
    assert "--min-length" in _one_error_line(proc.stderr)
    assert env.json("env", "rules")["rules"] == []
    assert env.our_processes() == []


def test_a_number_out_of_range_is_named_with_its_value(env: Env) -> None:
    env.config.write_text('[servers.a]\ncommand = "x"\nstartup_timeout = -5\nstop_timeout = 0\nmax_failures = 0\n')
    proc = env.run("config", "validate")
    assert proc.returncode == 2, proc.stderr
    assert "servers.a.startup_timeout: expected a positive number of seconds, got -5" in proc.stderr
    assert "servers.a.stop_timeout: expected a positive number of seconds, got 0" in proc.stderr
    assert "servers.a.max_failures: expected a whole number of at least 1, got 0" in proc.stderr
