"""The hot path: the plain forms of start, stop, restart, status, check, tools, call, ping and connect run
without typer or click, and answer as the typer commands do; whatever it cannot take exactly goes to the typer app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import Env, fixture_server, tiny_server, wait_for


def imported(
    env: Env, *args: str, stdin: str | None = None, environ: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -X importtime -m mcpctl ARGS`: its result, and the top-level packages it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mcpctl", *args],
        cwd=env.workdir,
        input=stdin,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return proc, {name.split(".")[0] for name in lines}


@pytest.mark.parametrize(
    "args",
    [("status",), ("status", "--json", "demo"), ("-q", "check", "--all"), ("check", "--nagios"), ("status", "-A")],
)
def test_hot_commands_do_not_import_typer(env: Env, args: tuple[str, ...]) -> None:
    env.write_config({"demo": tiny_server()})
    proc, packages = imported(env, *args)
    assert proc.returncode in (0, 2, 3), proc.stderr[-500:]
    assert "Traceback" not in proc.stderr
    assert "mcpctl" in packages
    assert not {"typer", "click", "inspect", "ast"} & packages  # inspect: deferred by mcpctl/lean.py


def test_with_the_config_kept_the_hot_commands_import_neither_typing_nor_tomllib(env: Env, tmp_path: Path) -> None:
    """`typing` costs a process ~2 ms and `tomllib` (which imports it) ~4 ms with the parse: the hot
    commands take their names from mcpctl.hints and the config's document from the cache."""
    env.write_config({"demo": tiny_server()})
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environ |= {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPYCACHEPREFIX": str(tmp_path / "pyc")}
    first, packages = imported(env, "status", environ=environ)
    assert first.returncode == 0, first.stderr[-500:]
    assert "tomllib" in packages  # parsed once, and kept
    for args in [("status",), ("start", "demo"), ("-q", "check", "--all"), ("stop", "--all")]:
        proc, packages = imported(env, *args, environ=environ)
        assert proc.returncode == 0, (args, proc.stderr[-500:])
        assert not {"typing", "tomllib"} & packages, args


def test_version_is_answered_without_typer_and_as_typer_answers_it(env: Env) -> None:
    from mcpctl import __version__

    fast, packages = imported(env, "--version")
    slow, slow_packages = imported(env, "-q", "--version")  # not the bare form: the typer app answers
    assert (fast.returncode, fast.stdout) == (0, f"mcpctl {__version__}\n")
    assert (slow.returncode, slow.stdout) == (0, fast.stdout)
    assert "typer" not in packages
    assert "typer" in slow_packages


def test_the_default_state_dir_costs_no_platformdirs_import(env: Env, tmp_path: Path) -> None:
    env.write_config({"demo": tiny_server()})
    home = tmp_path / "user"
    environ = {k: v for k, v in os.environ.items() if k not in ("MCPCTL_HOME", "XDG_STATE_HOME")}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mcpctl", "status", "--json"],
        cwd=env.workdir,
        env={**environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    assert [s["state"] for s in json.loads(proc.stdout)["servers"]] == ["stopped"]
    assert "platformdirs" not in proc.stderr  # where it lands: tests/unit/test_paths.py


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("status", "--bogus"), 2, "No such option: --bogus"),
        (("status", "--home", "/x"), 2, "No such option: --home"),  # a global taking a value: before the command
        (("status", "--json=yes"), 2, "does not take a value"),
        (("check", "-aq"), 2, "No such option"),
        (("status", "../etc"), 8, "not a server name"),
        (("ping", "demo", "--timeout", "nan"), 2, "expected a positive number of seconds, got nan"),
        (("call", "demo"), 2, "Missing argument 'tool'"),
    ],
)
def test_what_the_hot_path_cannot_take_gets_the_typer_answer(
    env: Env, args: tuple[str, ...], code: int, says: str
) -> None:
    env.write_config({"demo": tiny_server()})
    proc, packages = imported(env, *args)
    assert proc.returncode == code, proc.stderr[-500:]
    assert says in proc.stderr
    assert "typer" in packages
    assert "Traceback" not in proc.stderr


def test_session_commands_run_without_typer_and_answer_as_before(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    assert env.run("start", "demo").returncode == 0
    proc, packages = imported(env, "call", "demo", "echo", "text=hi", "--timeout", "30")
    assert (proc.returncode, proc.stdout) == (0, "hi\n"), proc.stderr[-500:]
    assert "typer" not in packages
    proc, packages = imported(env, "ping", "demo", "--json")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert json.loads(proc.stdout)["ok"] is True
    assert "typer" not in packages
    proc, packages = imported(env, "tools", "demo", "--json")
    assert "echo" in [t["name"] for t in json.loads(proc.stdout)["tools"]]
    assert "typer" not in packages
    proc, packages = imported(env, "connect", "demo", "--drain", stdin='{"jsonrpc":"2.0","id":7,"method":"ping"}\n')
    assert proc.returncode == 0, proc.stderr[-500:]
    assert json.loads(proc.stdout.splitlines()[0])["id"] == 7
    assert "typer" not in packages
    unknown = env.run("call", "demo", "nope", "--json")  # an error of the hot path: English JSON, exit 2
    assert unknown.returncode == 2
    assert json.loads(unknown.stdout)["error"]["message"].startswith("demo has no tool 'nope'")


def test_the_hot_path_speaks_the_users_language_and_english_json(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"demo": tiny_server()})
    monkeypatch.setenv("MCPCTL_LANG", "zh_CN")
    chinese = env.run("status", "demo")
    assert chinese.returncode == 3
    assert "NAME" not in chinese.stdout  # the header is translated
    english = env.run("status", "demo", "--json")
    assert json.loads(english.stdout)["servers"][0]["state"] == "stopped"


def test_help_comes_from_the_typer_app(env: Env) -> None:
    proc = env.run("status", "--help")
    assert proc.returncode == 0
    assert "Usage: mcpctl status [OPTIONS]" in proc.stdout
    assert "Machine-readable output on stdout." in proc.stdout


def test_hot_start_stop_and_restart_answer_as_the_typer_commands(env: Env) -> None:
    env.write_config({"demo": tiny_server(), "broken": {"command": sys.executable, "args": ["-c", "pass"]}})
    proc, packages = imported(env, "start", "demo", "--json", "--timeout", "30")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert json.loads(proc.stdout)["results"][0]["outcome"] == "started"
    assert not {"typer", "click"} & packages
    proc, packages = imported(env, "restart", "--all")
    assert proc.returncode == 4  # broken exits during startup: exit 4, as from the typer command
    assert "broken" in proc.stderr
    assert "typer" not in packages
    proc, packages = imported(env, "stop", "-a", "--json")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert {r["name"] for r in json.loads(proc.stdout)["results"]} == {"demo", "broken"}
    assert "typer" not in packages
    unnamed = env.run("stop")
    assert unnamed.returncode == 2
    assert "name one or more servers, or pass --all" in unnamed.stderr


def test_hot_status_and_check_answer_as_the_typer_commands(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    listed = env.json("status")["servers"]
    assert [(s["name"], s["state"]) for s in listed] == [("demo", "ready")]
    proc, packages = imported(env, "status", "demo")
    assert proc.returncode == 0, proc.stderr[-500:]
    assert "psutil" not in packages  # /proc tells whether the server still runs
    unknown = env.run("--config", str(env.config), "status", "nope")
    assert unknown.returncode == 8
    assert unknown.stderr.startswith("error: unknown server 'nope'")
    assert env.run("check", "demo").returncode == 0
    assert env.run("stop", "demo").returncode == 0
    assert env.run("status", "demo").returncode == 3
    assert env.run("check", "--nagios", "demo").returncode == 2
    assert env.run("status", "-A", "demo").returncode == 2  # names or -A, not both


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_live_pid_agrees_with_psutil() -> None:
    import psutil

    from mcpctl import process

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        created = psutil.Process(child.pid).create_time()
        assert process.boot_time() == psutil.boot_time()
        assert process.live_pid(child.pid, created) == child.pid
        assert process.same_process(child.pid, created) is not None
        assert process.live_pid(child.pid, created - 100.0) is None  # the pid now names another process
    finally:
        child.kill()
    stat = Path(f"/proc/{child.pid}/stat")
    wait_for(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")  # killed, not yet reaped
    assert process.live_pid(child.pid, created) is None  # a zombie is not running
    child.wait()
    assert process.live_pid(child.pid, created) is None


def _shims(env: Env) -> list[int]:
    return sorted(p.pid for p in env.our_processes() if "mcpctl.shim" in p.cmdline())


def test_start_runs_the_shim_it_started_ahead(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcpctl.control.early import for_argv
    from mcpctl.hot.run import parse, run

    env.write_config({"demo": tiny_server()})
    monkeypatch.chdir(env.workdir)
    monkeypatch.delenv("MCPCTL_HOME")  # named by --home alone: the shim's environment must still say it
    argv = ["-q", "--home", str(env.home), "start", "demo"]
    early, parsed = for_argv(argv), parse(argv)  # as the entry point does
    assert early is not None
    assert parsed is not None
    assert run(*parsed, early) == 0  # in this process: the early shim is our child (a shim spawned late is not)
    monkeypatch.setenv("MCPCTL_HOME", str(env.home))
    shim = psutil.Process(env.status("demo")["shim_pid"])
    assert shim.ppid() == os.getpid()
    assert shim.cmdline()[1:] == ["-m", "mcpctl.shim", "demo"]
    assert shim.environ()["MCPCTL_HOME"] == str(env.home)
    assert os.getsid(shim.pid) == shim.pid
    assert env.status("demo")["state"] == "ready"
    assert env.run("stop", "demo").returncode == 0
    os.waitpid(shim.pid, 0)  # what our exit would have done


def test_a_start_that_needs_no_shim_ends_the_early_one_before_it_returns(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FIXTURE_API_KEY", raising=False)
    env.write_config({"demo": tiny_server(), "amap": fixture_server("needs-env", required_env=["FIXTURE_API_KEY"])})
    assert env.run("start", "demo").returncode == 0
    running = _shims(env)
    assert len(running) == 1
    cases = [
        (("start", "demo"), 0),
        (("start", "nosuch"), 8),
        (("start", "amap"), 7),
        (("start", "demo", "--timeout", "nan"), 2),  # the typer app's usage error: the guess was wrong
        (("start", "demo", "nosuch"), 8),
    ]
    for args, code in cases:
        assert env.run(*args).returncode == code
        assert _shims(env) == running, args  # no early shim is left, not even for a moment


def test_the_entry_points_guess_of_a_start_matches_the_hot_parser(env: Env) -> None:
    from mcpctl.control.early import VALUED, guess
    from mcpctl.hot.options import GLOBAL

    assert {flag for opt in GLOBAL if opt.takes_value for flag in opt.flags} == VALUED
    home = str(env.home)
    assert guess(["start", "demo"]) == ("demo", home)
    assert guess(["-q", "--home", "/x", "start", "proj/demo", "--timeout", "5"]) == ("demo", "/x")
    assert guess(["--home=/x", "-f", "start", "start", "demo"]) == ("demo", "/x")  # -f's value is `start`
    assert guess(["--home", "/x/", "start", "demo"]) == ("demo", "/x")  # as Path names it
    assert guess(["start", "--all"]) is None
    assert guess(["start", "-a", "demo"]) is None
    assert guess(["status", "demo"]) is None
    assert guess(["logs", "start"]) is None


def test_the_flag_globals_are_taken_after_the_command_too(env: Env) -> None:
    """`--trust` and `-q` written after the command (where a hint's "pass --trust" puts them) work as
    before it, on the hot path and in the typer app alike."""
    env.write_config({"demo": tiny_server()})
    started = env.run("start", "demo", "-q")
    assert (started.returncode, started.stdout) == (0, "")  # quiet: the exit code says it
    for args in (("status", "demo", "--trust"), ("list", "--trust"), ("check", "demo", "-q", "--trust")):
        proc = env.run(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "No such option" not in proc.stderr
    assert env.run("check", "demo", "-q").stdout == ""
    typer_path = env.run("doctor", "--trust")
    assert typer_path.returncode == 0, typer_path.stderr
