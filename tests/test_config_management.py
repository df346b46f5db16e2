"""apply, status drift, history, diff and rollback against real shims and fixture servers."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY, Env, alive, fixture_server, settle, tiny_server

SECRET = "hunter2-very-secret-value"


def pids(env: Env) -> dict[str, tuple[int | None, int | None]]:
    """Server pid and shim pid of every server status knows."""
    return {s["name"]: (s["pid"], s["shim_pid"]) for s in env.json("status")["servers"]}


def applied(env: Env, *args: str, expect: int = 0) -> dict[str, Any]:
    report: dict[str, Any] = env.json("apply", *args, expect=expect)
    return report


def actions(report: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["action"] for a in report["plan"]}


def test_apply_starts_new_servers_and_records_a_version(env: Env) -> None:
    env.write_config({"a": tiny_server(), "b": tiny_server()})
    plan = applied(env, "--dry-run")
    assert plan["dry_run"] is True
    assert actions(plan) == {"a": "start", "b": "start"}
    assert env.our_processes() == []  # a dry run changes nothing
    assert env.json("config", "history")["versions"] == []

    report = applied(env, "-m", "first servers")
    assert {r["name"]: (r["outcome"], r["ok"]) for r in report["results"]} == {
        "a": ("started", True),
        "b": ("started", True),
    }
    assert report["version"]["id"] == 1
    assert {s["state"] for s in env.json("status")["servers"]} == {"ready"}
    assert [s["config_changed"] for s in env.json("status")["servers"]] == [False, False]
    (version,) = env.json("config", "history")["versions"]
    assert (version["id"], version["note"], version["servers"]) == (1, "first servers", ["a", "b"])
    assert version["user"]
    assert version["matches_file"] is True

    again = applied(env)
    assert actions(again) == {"a": "unchanged", "b": "unchanged"}
    assert again["results"] == []
    assert again["version"] is None  # the same file is not recorded twice
    text = env.run("apply")
    assert "nothing to do" in text.stdout


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t, _: t.update(args=[*t["args"], "--extra"]), "args"),
        (lambda t, _: t.update(env={"TOKEN": "another-value"}), "env.TOKEN"),
        (lambda t, _: t.update(env={"TOKEN": SECRET, "LEVEL": "debug"}), "env.LEVEL"),
        (lambda t, w: t.update(cwd=str(w / "sub")), "cwd"),
        (lambda t, w: (w / "a.env").write_text("MODE=changed\n"), "env_file_contents"),
        (lambda t, _: t.update(inherit_env=False), "inherit_env"),
        (lambda t, _: t.update(readiness="alive", ready_after=0.3), "readiness"),
    ],
    ids=["args", "env-value", "env-added", "cwd", "env-file-contents", "inherit-env", "readiness"],
)
def test_a_change_that_needs_a_restart_restarts_only_that_server(env: Env, change: Any, field: str) -> None:
    (env.workdir / "sub").mkdir()
    (env.workdir / "a.env").write_text("MODE=original\n")
    changed = tiny_server(env={"TOKEN": SECRET}, env_file="a.env")
    tables = {"changed": changed, "bystander": tiny_server()}
    env.write_config(tables)
    applied(env)
    before = pids(env)

    change(changed, env.workdir)
    env.write_config(tables)
    assert env.status("changed")["config_changed"] is True
    assert env.status("bystander")["config_changed"] is False
    plan = applied(env, "--dry-run")
    assert actions(plan) == {"bystander": "unchanged", "changed": "restart"}
    fields = [f["field"] for f in plan["plan"][1]["fields"]]
    assert any(f.startswith(field) for f in fields), fields

    report = applied(env)
    assert [(r["name"], r["outcome"]) for r in report["results"]] == [("changed", "started")]
    after = pids(env)
    assert after["bystander"] == before["bystander"]
    assert after["changed"][0] != before["changed"][0]
    assert not alive(before["changed"][0] or 0)
    assert env.status("changed")["config_changed"] is False
    assert SECRET not in json.dumps(report)


def _alert_that_fires_at_once() -> dict[str, Any]:
    return {"always": {"metric": "rss_mb", "comparison": ">", "threshold": 0, "for": 0, "severity": "info"}}


def test_health_and_alert_settings_are_updated_in_place_keeping_the_pid(env: Env) -> None:
    table = tiny_server()
    env.write_config({"demo": table, "other": tiny_server()})
    applied(env)
    before = pids(env)
    first_ping = env.status("demo")["health"]
    assert first_ping is None  # health_interval is 30 s: no ping yet

    table.update(health_interval=0.2, metrics_interval=0.2, restart="always", backoff_max=5)
    table["alerts"] = _alert_that_fires_at_once()
    env.write_config({"demo": table, "other": tiny_server()})
    plan = applied(env, "--dry-run")
    assert actions(plan) == {"demo": "update", "other": "unchanged"}
    assert {f["impact"] for f in plan["plan"][0]["fields"]} == {"update"}

    report = applied(env)
    (result,) = report["results"]
    assert (result["name"], result["outcome"], result["ok"]) == ("demo", "updated", True)
    assert pids(env) == before  # nothing was restarted, not even the shim
    status = settle(env, "demo", lambda s: s.get("health") and s.get("alerts"), timeout=10)
    assert status["health"]["ok"] is True  # pings every 0.2 s now
    assert [a["name"] for a in status["alerts"]] == ["always"]  # the new rule runs in the old shim
    assert status["config_changed"] is False
    events = (env.paths.servers / "demo" / "events.jsonl").read_text()
    assert '"event":"updated"' in events
    assert applied(env, "--dry-run")["plan"][0]["action"] == "unchanged"


def test_a_change_read_by_each_command_needs_nothing(env: Env) -> None:
    table = tiny_server()
    env.write_config({"demo": table})
    applied(env)
    table.update(startup_timeout=33, stop_timeout=4, required_env=["HOME"])
    env.write_config({"demo": table})
    assert env.status("demo")["config_changed"] is False
    assert actions(applied(env, "--dry-run")) == {"demo": "unchanged"}
    diff = env.json("config", "diff")
    (server,) = diff["servers"]
    assert server["impact"] == "none"
    assert {f["field"]: f["impact"] for f in server["fields"]} == {
        "startup_timeout": "none",
        "stop_timeout": "none",
        "required_env": "none",
    }


def test_status_does_not_send_to_apply_a_server_another_config_file_started(env: Env) -> None:
    # apply leaves such a server running: status said 'not in config, run mcpctl apply' all the same.
    env.write_config({"mine": tiny_server()})
    other = env.workdir / "other.toml"  # the same folder: the same project
    other.write_text(env.config.read_text().replace("[servers.mine]", "[servers.theirs]"))
    assert env.run("-f", str(other), "start", "theirs").returncode == 0
    table = env.run("status")
    assert "ready (started from another config file)" in table.stdout
    assert "apply" not in table.stdout + table.stderr
    assert env.status("theirs")["config_changed"] is None
    assert actions(applied(env, "--dry-run")) == {"mine": "start", "theirs": "foreign"}
    assert env.status("theirs")["state"] == "ready"


def test_one_apply_starts_stops_restarts_and_updates_exactly_what_changed(env: Env) -> None:
    tables = {name: tiny_server() for name in ("keep", "drop", "restart", "update")}
    env.write_config(tables)
    applied(env, "-m", "four servers")
    before = pids(env)

    del tables["drop"]
    tables["restart"]["args"].append("--changed")
    tables["update"]["health_interval"] = 7
    tables["new"] = tiny_server()
    env.write_config(tables)
    table = env.run("status")
    assert "ready (config changed, run mcpctl apply)" in table.stdout
    assert "ready (not in config, run mcpctl apply)" in table.stdout
    assert "run `mcpctl apply`" in table.stderr

    report = applied(env, "-m", "reshuffle")
    assert actions(report) == {
        "drop": "stop",
        "keep": "unchanged",
        "new": "start",
        "restart": "restart",
        "update": "update",
    }
    assert {r["name"]: r["outcome"] for r in report["results"]} == {
        "drop": "stopped",
        "new": "started",
        "restart": "started",
        "update": "updated",
    }
    after = pids(env)
    assert after["keep"] == before["keep"]
    assert after["update"] == before["update"]
    assert after["restart"][0] != before["restart"][0]
    assert after["drop"] == (None, None)
    assert not alive(before["drop"][0] or 0)
    assert after["new"][0] is not None
    assert len(env.running(TINY)) == 4
    assert report["version"]["id"] == 2
    assert {s["name"]: s["config_changed"] for s in env.json("status")["servers"]} == {
        "keep": False,
        "new": False,
        "restart": False,
        "update": False,
        "drop": None,
    }


def test_a_server_stopped_by_hand_stays_stopped(env: Env) -> None:
    env.write_config({"a": tiny_server(), "b": tiny_server()})
    applied(env)
    assert env.run("stop", "b").returncode == 0
    report = applied(env)
    assert actions(report) == {"a": "unchanged", "b": "not_running"}
    assert env.status("b")["state"] == "stopped"
    assert "not running, left as they are: b" in env.run("apply", "--dry-run").stdout


def test_first_apply_leaves_servers_that_ran_before_alone(env: Env) -> None:
    env.write_config({"ran": tiny_server(), "never": tiny_server()})
    assert env.run("start", "ran").returncode == 0
    assert env.run("stop", "ran").returncode == 0
    assert actions(applied(env, "--dry-run")) == {"never": "start", "ran": "not_running"}


def test_a_server_whose_running_config_is_unknown_is_restarted(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    pid = env.status("demo")["pid"]
    (env.paths.servers / "demo" / "applied.json").unlink()  # as after an upgrade from an older mcpctl
    env.write_config({"demo": tiny_server(health_interval=9)})
    plan = applied(env, "--dry-run")
    assert actions(plan) == {"demo": "restart"}
    assert "not known" in plan["plan"][0]["reason"]
    applied(env)
    assert env.status("demo")["pid"] != pid


def test_apply_reports_a_failed_start_with_exit_4(env: Env) -> None:
    env.write_config({"ok": tiny_server(), "bad": fixture_server("crash", restart="never")})
    report = applied(env, expect=4)
    assert {r["name"]: r["ok"] for r in report["results"]} == {"bad": False, "ok": True}
    assert report["version"]["failed"] == ["bad"]
    assert env.status("ok")["state"] == "ready"


@pytest.mark.parametrize(
    ("broken", "code", "outcome"),
    [
        ({"command": "/nonexistent/mcpctl-test-server"}, 4, "failed"),
        (tiny_server(env={"KEY": "${MCPCTL_TEST_UNSET_VAR}"}), 7, "env_invalid"),
    ],
    ids=["start-failed", "preflight-refused"],
)
def test_apply_after_fixing_a_new_server_that_failed_starts_it(
    env: Env, monkeypatch: pytest.MonkeyPatch, broken: dict[str, Any], code: int, outcome: str
) -> None:
    monkeypatch.delenv("MCPCTL_TEST_UNSET_VAR", raising=False)
    env.write_config({"ok": tiny_server()})
    applied(env)
    env.write_config({"ok": tiny_server(), "new": broken})
    failed = applied(env, expect=code)
    assert [(r["name"], r["outcome"]) for r in failed["results"]] == [("new", outcome)]
    assert failed["version"]["failed"] == ["new"]  # the version is the config applied, failures and all

    env.write_config({"ok": tiny_server(), "new": tiny_server()})
    retried = applied(env)
    assert actions(retried) == {"new": "start", "ok": "unchanged"}
    assert [(r["name"], r["outcome"]) for r in retried["results"]] == [("new", "started")]
    assert env.status("new")["state"] == "ready"

    assert env.run("stop", "new").returncode == 0  # a person's stop still wins over the retry
    assert actions(applied(env)) == {"new": "not_running", "ok": "unchanged"}


def test_apply_after_fixing_a_changed_server_whose_restart_failed_starts_it(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    applied(env)
    env.write_config({"demo": tiny_server(command="/nonexistent/mcpctl-test-server", restart="never")})
    assert [r["outcome"] for r in applied(env, expect=4)["results"]] == ["failed"]
    assert env.status("demo")["shim_pid"] is None

    env.write_config({"demo": tiny_server()})
    retried = applied(env)
    assert actions(retried) == {"demo": "start"}
    assert env.status("demo")["state"] == "ready"


def test_history_and_diff_name_each_field_and_hide_env_values(env: Env) -> None:
    table = tiny_server(env={"API_KEY": SECRET, "HOME_REF": "${HOME}"})
    env.write_config({"demo": table})
    nothing = env.run("config", "diff")  # before any apply: the project is named, and where old versions are
    assert nothing.returncode == 2
    assert "project 'w' has no config version applied yet" in nothing.stderr
    assert "--project OLD config diff" in nothing.stderr
    applied(env, "-m", "v1")
    table["env"]["API_KEY"] = SECRET + "-rotated"
    table["args"].append("--verbose")
    table["health_timeout"] = 2
    env.write_config({"demo": table, "extra": tiny_server()})
    applied(env, "-m", "v2")

    history = env.json("config", "history")["versions"]
    assert [(v["id"], v["note"], v["matches_file"]) for v in history] == [(1, "v1", False), (2, "v2", True)]
    diff = env.json("config", "diff", "1", "2")
    assert diff["from"].startswith("version 1")
    assert diff["to"].startswith("version 2")
    by_name = {s["name"]: s for s in diff["servers"]}
    assert by_name["extra"]["change"] == "added"
    fields = {f["field"]: f for f in by_name["demo"]["fields"]}
    assert set(fields) == {"args", "env.API_KEY", "health_timeout"}
    assert (fields["env.API_KEY"]["from"], fields["env.API_KEY"]["to"]) == ("***", "***")
    assert fields["args"]["to"][-1] == "--verbose"
    assert (fields["health_timeout"]["from"], fields["health_timeout"]["to"], fields["health_timeout"]["impact"]) == (
        5.0,
        2.0,
        "update",
    )
    assert by_name["demo"]["impact"] == "restart"

    env.write_config({"demo": table})
    default = env.json("config", "diff")  # the last applied version against the file
    assert [(s["name"], s["change"]) for s in default["servers"]] == [("extra", "removed")]
    assert env.json("config", "diff", "2", "2")["servers"] == []
    text = env.run("config", "diff", "1")
    assert 'env.API_KEY: "***" -> "***"  [restart]' in text.stdout
    assert "health_timeout: 5.0 -> 2.0  [update in place]" in text.stdout
    for output in (text.stdout, json.dumps(history), json.dumps(diff)):
        assert SECRET not in output
    unknown = env.run("config", "diff", "9")
    assert unknown.returncode == 2
    assert "no config version '9'" in unknown.stderr


def test_no_secret_reaches_the_state_dir(env: Env) -> None:
    (env.workdir / "s.env").write_text(f"FROM_FILE={SECRET}-file\n")
    table = tiny_server(env={"API_KEY": SECRET}, env_file="s.env")
    table["args"].append(f"--key={SECRET}")
    env.write_config({"demo": table})
    applied(env, "-m", "with secrets")
    table["health_interval"] = 3
    env.write_config({"demo": table})
    applied(env)
    for path in env.home.rglob("*"):
        if path.is_file() and not path.is_socket():
            assert SECRET.encode() not in path.read_bytes(), path


def test_rollback_writes_the_version_back_with_secrets_from_the_current_file(env: Env) -> None:
    table = tiny_server(env={"API_KEY": SECRET})
    env.write_config({"demo": table})
    applied(env, "-m", "v1")
    first_pid = env.status("demo")["pid"]
    table["args"].append("--second")
    env.write_config({"demo": table, "extra": tiny_server()})
    applied(env, "-m", "v2")
    second = env.config.read_text()

    rolled = env.run("config", "rollback", "1")
    assert rolled.returncode == 0, rolled.stderr
    assert "mcpctl apply" in rolled.stderr
    assert Path(str(env.config) + ".bak").read_text() == second
    assert env.json("config", "diff", "1", "file")["servers"] == []
    import tomllib

    restored = tomllib.loads(env.config.read_text())["servers"]
    assert list(restored) == ["demo"]
    assert restored["demo"]["env"]["API_KEY"] == SECRET  # unsealed from the current file
    assert "--second" not in restored["demo"]["args"]
    assert env.status("demo")["config_changed"] is True  # written, not applied yet

    report = applied(env)
    assert actions(report) == {"demo": "restart", "extra": "stop"}
    assert env.status("demo")["pid"] not in (first_pid, None)
    report = env.json("config", "rollback", "2", "--apply")
    assert report["version"]["note"] == "rollback to version 2"
    assert actions(report) == {"demo": "restart", "extra": "start"}
    assert [v["id"] for v in env.json("config", "history")["versions"]] == [1, 2, 3, 4]


def test_rollback_refuses_a_secret_it_cannot_find_unless_placeholders(env: Env) -> None:
    env.write_config({"demo": tiny_server(env={"API_KEY": SECRET})})
    applied(env)
    env.write_config({"demo": tiny_server(env={"API_KEY": "rotated-value"})})
    applied(env)  # the file was edited by hand: no backup holds the old value either
    before = env.config.read_bytes()

    refused = env.run("config", "rollback", "1")
    assert refused.returncode == 2
    assert "servers.demo.env.API_KEY" in refused.stderr
    assert "--placeholders" in refused.stderr
    assert env.config.read_bytes() == before

    assert env.run("config", "rollback", "1", "--placeholders").returncode == 0
    import tomllib

    assert tomllib.loads(env.config.read_text())["servers"]["demo"]["env"] == {"API_KEY": "${API_KEY}"}


def test_validate_lists_every_problem_with_file_server_and_field(env: Env) -> None:
    env.config.write_text(
        "bogus = 1\n"
        '[servers.a]\ncommand = 1\nargs = "x"\n'
        '[servers.b]\ncommand = "y"\nhealth_intervall = 3\n'
        '[servers.c]\ncommand = "z"\n[servers.c.alerts.x]\nmetric = "nope"\nthreshold = 1\n'
    )
    proc = env.run("config", "validate")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 5, proc.stderr
    assert all(line.startswith(f"error: {env.config}: ") for line in lines)
    report = env.json("config", "validate", expect=2)
    assert report["ok"] is False
    located = {(p["server"], p["field"]) for p in report["problems"]}
    assert located == {
        (None, None),
        ("a", "command"),
        ("a", "args"),
        ("b", "health_intervall"),
        ("c", "alerts.x.metric"),
    }
    start = env.run("start", "--all")  # the same validation, the same problems
    assert start.returncode == 2
    assert [line for line in start.stderr.splitlines() if line.startswith("error: ")] == lines

    env.write_config({"a": tiny_server()})
    ok = env.run("config", "validate")
    assert (ok.returncode, ok.stdout) == (0, f"ok: {env.config}: 1 server(s): a\n")
    assert env.json("config", "validate") | {"schema": 1} == {
        "schema": 1,
        "ok": True,
        "config": str(env.config),
        "servers": ["a"],
        "problems": [],
    }


def test_status_without_a_config_file_marks_nothing(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    os.rename(env.config, env.workdir / "elsewhere.toml")
    assert env.status("demo")["config_changed"] is None
    env.write_config({"demo": tiny_server()})
    assert env.status("demo")["config_changed"] is False


def test_the_command_status_hints_at_for_a_changed_config_works_before_any_apply(env: Env) -> None:
    env.write_config({"a": tiny_server()})
    assert env.run("start", "a").returncode == 0  # started, never applied: no config version yet
    env.write_config({"a": tiny_server(health_interval=7)})
    hinted = re.findall(r"`mcpctl ([^`]+)`", env.run("status").stderr)
    assert hinted[0] == "apply"
    for command in hinted[1:]:
        proc = env.run(*command.split())
        assert proc.returncode == 0, (command, proc.stderr)
        assert "restart" in proc.stdout
