"""Projects (issue 18): one config file per directory, one shared state dir, servers keyed by (project, name).

Real CLI runs, real shims and servers, a real SDK client for `connect PROJECT/NAME` from `/`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from mcpctl.config import history
from mcpctl.config.load import load
from mcpctl.control.controller import Controller
from mcpctl.control.launch import ShimLauncher
from mcpctl.paths import Paths
from tests.conftest import Env, alive, fixture_server, tiny_server
from tests.test_clients import _tools


def _project(env: Env, directory: str, servers: dict[str, Any], **top: str) -> Env:
    """A project directory beside the test's own, sharing its state dir."""
    workdir = env.workdir.parent / directory
    workdir.mkdir(exist_ok=True)
    (workdir / "mcpctl.toml").write_text(tomli_w.dumps({**top, "servers": servers}))
    return Env(env.home, workdir)


def _pids(world: Env, *args: str) -> dict[str, int | None]:
    listed = world.json("status", *args)["servers"]
    return {(f"{s['project']}/{s['name']}" if "-A" in args else s["name"]): s["pid"] for s in listed}


@pytest.fixture
def two(env: Env) -> tuple[Env, Env]:
    a = _project(env, "alpha", {"time": tiny_server()})
    b = _project(env, "bravo", {"time": fixture_server("healthy")})
    for world in (a, b):
        proc = world.run("start", "time")
        assert proc.returncode == 0, proc.stderr
    return a, b


def test_two_projects_each_run_their_time_server_and_see_only_their_own(two: tuple[Env, Env]) -> None:
    a, b = two
    a_pid, b_pid = _pids(a)["time"], _pids(b)["time"]
    assert a_pid
    assert b_pid
    assert a_pid != b_pid
    assert alive(a_pid)
    assert alive(b_pid)
    assert a.json("status")["servers"][0]["project"] == "alpha"
    assert [s["project"] for s in b.json("status")["servers"]] == ["bravo"]
    assert _pids(a, "-A") == {"alpha/time": a_pid, "bravo/time": b_pid}
    assert "bravo/time" in Env(a.home, Path("/")).run("status", "-A").stdout
    assert a.run("list", "--names").stdout.split() == ["time", "bravo/time"]  # what completion offers
    a.config.write_text(tomli_w.dumps({"servers": {}}))  # alpha's time leaves alpha's config
    plan = a.json("apply", "--dry-run")["plan"]
    assert [(p["name"], p["action"]) for p in plan] == [("time", "stop")]  # alpha's own, never bravo's
    assert a.run("apply").returncode == 0
    assert _pids(b) == {"time": b_pid}
    assert alive(b_pid)
    assert not alive(a_pid)
    assert a.json("status", "bravo/time")["servers"][0]["pid"] == b_pid  # PROJECT/NAME from another project


def test_connect_project_name_from_root_with_no_config_starts_and_serves(two: tuple[Env, Env]) -> None:
    a, b = two
    assert b.run("stop", "time").returncode == 0
    mcpctl = Path(sys.executable).parent / "mcpctl"
    entry = {"command": str(mcpctl), "args": ["--home", str(b.home), "connect", "bravo/time"]}
    assert "echo" in _tools(entry)  # cwd /, a bare environment, no -f: the record knows bravo's config
    assert b.json("status")["servers"][0]["state"] == "ready"
    from_root = Env(b.home, Path("/"))
    assert from_root.run("call", "bravo/time", "echo", "text=hi").stdout.strip() == "hi"
    assert "[mcpctl] ready in" in from_root.run("logs", "bravo/time").stdout
    checked = from_root.json("env", "check", "bravo/time")["servers"]  # bravo's config, as `start` finds it
    assert [(s["name"], s["ok"]) for s in checked] == [("time", True)]
    assert from_root.run("restart", "bravo/time").returncode == 0
    assert from_root.run("stop", "bravo/time").returncode == 0
    assert b.json("status", expect=0)["servers"][0]["state"] == "stopped"
    assert _pids(a)["time"]  # alpha's untouched throughout


def test_a_removed_config_is_reported_orphaned_never_stopped_and_forget_needs_it_stopped(
    two: tuple[Env, Env],
) -> None:
    a, b = two
    b_pid = _pids(b)["time"]
    b.config.unlink()
    listed = {f"{s['project']}/{s['name']}": s for s in a.json("status", "-A")["servers"]}
    assert listed["bravo/time"]["orphaned"] is True
    assert listed["bravo/time"]["state"] == "ready"
    assert listed["alpha/time"]["orphaned"] is False
    assert "orphaned" in a.run("status", "-A").stdout
    found = a.json("doctor", expect=6)["findings"]
    assert [(f["kind"], f["subject"]) for f in found] == [("orphaned", "bravo/time")]
    assert a.run("apply").returncode == 0
    assert alive(b_pid)
    refused = a.run("forget", "bravo/time")
    assert refused.returncode == 2
    assert "bravo/time is ready" in refused.stderr
    assert "`mcpctl stop bravo/time`" in refused.stderr
    assert alive(b_pid)
    assert a.run("stop", "bravo/time").returncode == 0
    done = a.json("forget", "bravo/time")
    assert [r["name"] for r in done["results"]] == ["time"]
    assert not (a.home / "projects" / "bravo" / "servers" / "time").exists()
    assert "bravo/time" not in a.run("status", "-A").stdout
    assert _pids(a)["time"]


def test_a_state_dir_of_the_old_layout_is_adopted_with_its_running_server_untouched(env: Env) -> None:
    env.write_config({"time": tiny_server(), "idle": tiny_server()})
    config = load(env.config)
    old = Paths(env.home)  # the layout before projects: servers/NAME, logs/NAME.log, run/NAME.sock
    controller = Controller(old, config, launcher=ShimLauncher(old))
    assert all(r.ok for r in controller.start(list(config.servers.values())))
    controller.stop([config.servers["idle"]])
    history.record(old, config, env.config.read_bytes(), "", [])
    pid = _pids(Env(env.home, Path("/")), "-A")["-/time"]
    assert pid
    assert (env.home / "servers" / "time" / "state.json").exists()
    proc = env.run("status", "--json")
    assert "now belong to project 'w'" in proc.stderr
    assert "still running in the old layout" in proc.stderr
    assert env.json("status")["servers"][0]["pid"] == pid
    assert env.run("status").stderr.count("now belong") == 0  # the note is said once
    assert (env.paths.servers / "idle" / "state.json").exists()  # stopped: moved at once
    assert (env.home / "servers" / "time" / "instance.lock").exists()  # running: left in place
    assert "pong" in env.run("ping", "time").stdout
    assert alive(pid)
    assert _pids(env) == {"time": pid, "idle": None}
    assert [v["id"] for v in env.json("config", "history")["versions"]] == [1]
    assert env.json("apply", "--dry-run")["plan"][1]["action"] == "unchanged"
    assert env.run("stop", "time").returncode == 0
    assert env.json("status")["servers"][0]["state"] == "stopped"  # the next command moves it: its shim is gone
    assert (env.paths.servers / "time" / "events.jsonl").exists()
    assert not (env.home / "servers").exists()
    assert env.run("start", "time").returncode == 0
    assert env.record("time")["project"] == "w"


def test_project_and_home_keys_and_bad_names(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.config.write_text('project = "Bad Name"\n[servers.a]\ncommand = "x"\n')
    proc = env.run("config", "validate")
    assert proc.returncode == 2
    assert "project: expected a name of a-z" in proc.stderr
    assert env.run("status", "Bad/x").returncode == 2
    env.config.write_text(tomli_w.dumps({"project": "svc", "home": "../h", "servers": {"a": tiny_server()}}))
    monkeypatch.delenv("MCPCTL_HOME")
    assert env.run("start", "a").returncode == 0  # the config's home: the test's state dir
    record = env.home / "projects" / "svc" / "servers" / "a" / "state.json"
    assert record.exists()
    assert str(env.config) in record.read_text()
    assert env.json("status", "-A")["servers"][0]["project"] == "svc"
    assert env.run("--project", "svc", "stop", "a").returncode == 0


def test_a_rule_added_in_one_project_applies_to_that_projects_servers_only(env: Env) -> None:
    a = _project(env, "alpha", {"time": tiny_server()})
    b = _project(env, "bravo", {"time": tiny_server()})
    var = "MCPCTL_TEST_PROJECT_RULE"
    assert a.run("env", "rule", "add", "time", var).returncode == 0
    assert [r["var"] for r in a.json("env", "rules")["rules"]] == [var]
    assert b.json("env", "rules")["rules"] == []
    refused = a.run("start", "time")
    assert refused.returncode == 7
    assert var in refused.stderr
    assert b.run("start", "time").returncode == 0  # bravo's own `time`: no rule of alpha's
    assert (env.home / "projects" / "alpha" / "env_rules.json").is_file()
    assert not (env.home / "env_rules.json").exists()


def test_the_rules_an_older_mcpctl_kept_for_the_whole_state_dir_apply_until_a_project_has_its_own(env: Env) -> None:
    a = _project(env, "alpha", {"time": tiny_server()})
    b = _project(env, "bravo", {"time": tiny_server()})
    old = {"schema": 1, "rules": [{"server": "time", "var": "MCPCTL_TEST_OLD_RULE", "required": True}]}
    env.home.mkdir(mode=0o700, exist_ok=True)
    (env.home / "env_rules.json").write_text(json.dumps(old))
    assert [r["var"] for r in b.json("env", "rules")["rules"]] == ["MCPCTL_TEST_OLD_RULE"]
    assert b.run("start", "time").returncode == 7
    assert a.run("env", "rule", "rm", "time", "MCPCTL_TEST_OLD_RULE").returncode == 0  # alpha's own file now
    assert a.json("env", "rules")["rules"] == []
    assert a.run("start", "time").returncode == 0
    assert b.run("start", "time").returncode == 7  # bravo still has the old rules


def test_a_config_broken_while_its_servers_run_still_lets_stop_end_them_and_status_show_them(env: Env) -> None:
    """Stopping needs nothing of a config but its project, which the records name with the file: a
    syntax error added while servers run warns, once, and never locks their stop out. start refuses."""
    world = _project(env, "p3", {"m": tiny_server(), "n": tiny_server(), "o": tiny_server()}, project="third")
    assert world.run("start", "--all").returncode == 0
    listed = {s["name"]: s for s in world.json("status")["servers"]}
    pids = {name: (s["pid"], s["shim_pid"]) for name, s in listed.items()}
    with world.config.open("a") as config:
        config.write("garbage = [\n")
    warning = f"warning: {world.config}: invalid TOML"

    def warned_once(proc: Any) -> None:
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.count("warning:") == 1, proc.stderr
        assert warning in proc.stderr
        assert "start refuses" in proc.stderr

    shown = world.run("status")
    warned_once(shown)
    assert [line.split()[:2] for line in shown.stdout.splitlines()[1:]] == [[name, "ready"] for name in "mno"]
    refused = world.run("start", "m")
    assert refused.returncode == 2
    assert f"error: {world.config}: invalid TOML" in refused.stderr
    assert world.run("stop", "gone").returncode == 2  # no record: whether it is configured is the config's to say

    warned_once(world.run("stop", "m"))
    assert not any(alive(pid) for pid in pids["m"])
    elsewhere = Env(world.home, Path("/"))
    warned_once(elsewhere.run("stop", "third/n"))
    assert not any(alive(pid) for pid in pids["n"])
    warned_once(elsewhere.run("status", "third/o"))
    warned_once(elsewhere.run("--project", "third", "stop", "--all"))
    assert not any(alive(pid) for pid in pids["o"])
    assert {s["name"]: s["state"] for s in world.json("status")["servers"]} == dict.fromkeys("mno", "stopped")
    world.config.write_text('project = "third"\n[servers.m]\ncommand = 5\n')  # a wrong setting, not a syntax error
    shown = world.run("status")
    assert shown.returncode == 0, shown.stderr
    assert f"warning: {world.config}: servers.m" in shown.stderr
    assert world.run("start", "m").returncode == 2


def test_project_option_applies_that_projects_own_config_never_this_directorys(env: Env) -> None:
    """`--project pb apply` in pa's directory: pb's servers by pb's file (the one its records name, as
    `restart` and `list` take it); pa's file, which sets WHO for the same server name, reaches none of them."""
    a = _project(env, "pa", {"time": tiny_server(env={"WHO": "pa-config"})})
    b = _project(env, "pb", {"time": tiny_server()})
    assert b.run("start", "time").returncode == 0
    pid = _pids(b)["time"]
    plan = a.json("--project", "pb", "apply", "--dry-run")["plan"]
    assert [(p["name"], p["action"]) for p in plan] == [("time", "unchanged")]
    applied = a.run("--project", "pb", "apply")
    assert applied.returncode == 0, applied.stderr
    assert _pids(b) == {"time": pid}  # not restarted with pa's env
    assert "pa-config" not in Path(f"/proc/{pid}/environ").read_text(errors="replace")
    assert a.json("--project", "pb", "config", "diff")["servers"] == []
    (version,) = a.json("--project", "pb", "config", "history")["versions"]
    assert version["matches_file"]  # the version recorded is pb's file, and --project pb compares with it
    assert b.json("config", "history")["versions"] == [version]
    assert a.json("status")["servers"][0]["state"] == "stopped"  # pa's own time never started


def test_f_of_one_project_with_another_project_named_is_a_usage_error_never_one_ignored(env: Env) -> None:
    """`--project pb -f pa.toml` (or `-f pa.toml ... pb/NAME`): the file is pa's, the project pb. Either
    was silently dropped (pb's recorded file taken instead of -f); now exit 2 naming both, in the hot
    path (status, stop) and the typer app (list, apply, config diff) alike, and in the API."""
    from mcpctl import Manager
    from mcpctl.errors import UsageError

    a = _project(env, "pa", {"time": tiny_server(env={"WHO": "pa-config"})})
    b = _project(env, "pb", {"time": tiny_server()})
    assert b.run("start", "time").returncode == 0
    pid = _pids(b)["time"]
    elsewhere = Env(env.home, Path("/"))
    for args in (
        ("--project", "pb", "-f", str(a.config), "status"),
        ("--project", "pb", "-f", str(a.config), "list"),
        ("--project", "pb", "-f", str(a.config), "apply"),
        ("--project", "pb", "-f", str(a.config), "config", "diff"),
        ("-f", str(a.config), "stop", "pb/time"),
        ("-f", str(a.config), "restart", "pb/time"),
    ):
        refused = elsewhere.run(*args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
        assert f"-f {a.config} is the config file of project 'pa', not of project 'pb'" in refused.stderr, args
        assert refused.stderr.count("\n") == 2, refused.stderr  # the error, its hint
    error = elsewhere.json("--project", "pb", "-f", str(a.config), "status", expect=2)["error"]
    assert (error["type"], error["exit_code"]) == ("usage", 2)
    assert _pids(b) == {"time": pid}  # neither stopped, restarted nor applied with pa's file
    assert "pa-config" not in Path(f"/proc/{pid}/environ").read_text(errors="replace")
    assert a.json("status")["servers"][0]["state"] == "stopped"  # nor did pa's own start
    agreed = elsewhere.json("--project", "pb", "-f", str(b.config), "status")["servers"]
    assert [(s["name"], s["pid"]) for s in agreed] == [("time", pid)]  # the same project both ways: fine
    with pytest.raises(UsageError, match="config file of project 'pa', not of project 'pb'"):
        Manager(config=a.config, home=env.home, project="pb").status()
    assert [o.pid for o in Manager(config=b.config, home=env.home, project="pb").status()] == [pid]
