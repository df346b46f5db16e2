"""Projects and the features beside them: resume -A, `mcpctl run`, restart in place, the Python API.

Real CLI runs, real shims and servers, in two project directories sharing one state dir.
"""

from __future__ import annotations

import json
import subprocess
import sys

from mcpctl import Manager
from mcpctl.paths import Paths
from tests.conftest import Env, tiny_server, wait_for
from tests.test_projects import _project
from tests.test_resume import _kill_everything


def test_resume_covers_the_current_project_and_all_of_them_with_A(env: Env) -> None:
    a = _project(env, "alpha", {"time": tiny_server()})
    b = _project(env, "bravo", {"time": tiny_server()})
    for world in (a, b):
        assert world.run("start", "time").returncode == 0
    _kill_everything(a)
    proc = a.run("resume", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [r["name"] for r in json.loads(proc.stdout)["results"]] == ["time"]
    wait_for(lambda: a.status("time")["state"] == "ready", timeout=60)
    assert b.status("time")["state"] == "stopped"  # alpha's resume never starts bravo's
    everything = a.run("resume", "-A", "--json")
    assert everything.returncode == 0, everything.stderr
    assert sorted(r["name"] for r in json.loads(everything.stdout)["results"]) == ["alpha/time", "bravo/time"]
    wait_for(lambda: b.status("time")["state"] == "ready", timeout=60)


def test_restart_in_place_and_run_keep_the_project_and_config_file_in_the_record(env: Env) -> None:
    a = _project(env, "alpha", {"time": tiny_server(), "fg": tiny_server()})
    assert a.run("start", "time").returncode == 0
    record = Paths(a.home, "alpha").state_file("time")
    shim_pid = json.loads(record.read_text())["shim_pid"]
    assert a.run("restart", "time").returncode == 0
    after = json.loads(record.read_text())
    assert after["shim_pid"] == shim_pid  # in place: the same shim, given the spec again
    assert after["project"] == "alpha"
    assert after["config_file"] == str(a.config)
    command = [sys.executable, "-m", "mcpctl", "run", "fg"]
    fg = subprocess.Popen(command, cwd=a.workdir, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        fg_record = record.parent.parent / "fg" / "state.json"
        wait_for(lambda: fg_record.exists() and json.loads(fg_record.read_text()).get("state") == "ready", timeout=60)
        shown = json.loads(fg_record.read_text())
        assert shown["project"] == "alpha"
        assert shown["config_file"] == str(a.config)
    finally:
        fg.terminate()
        fg.wait(timeout=60)


def test_the_api_manager_acts_on_the_config_project_or_the_one_named(env: Env) -> None:
    a = _project(env, "alpha", {"time": tiny_server()})
    b = _project(env, "bravo", {"time": tiny_server(), "other": tiny_server()})
    assert b.run("start", "time").returncode == 0
    mine = Manager(home=a.home, directory=a.workdir)
    assert [(o.name, o.state) for o in mine.status()] == [("time", "stopped")]
    theirs = Manager(home=a.home, directory=a.workdir, project="bravo")  # the config its records name
    assert {o.name: o.state for o in theirs.status()} == {"time": "ready", "other": "stopped"}
    assert theirs.paths.project == "bravo"
