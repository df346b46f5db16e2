"""Environment resolution, pre-flight checks before spawn, rules from the CLI, and secrets that never leak."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil
import pytest

from mcpctl.config.environment import EnvRule, parse_dotenv, resolve
from mcpctl.config.interpolate import InterpolationError, interpolate
from mcpctl.config.model import ServerConfig
from tests.conftest import Env, fixture_server

SECRET = "sk-live-Zq8Xv3Rt6Yp1Wm4Nb7Lk2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "1"),
        ("x${A}y${B}", "x1ytwo"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-used when empty}", "used when empty"),
        ("${MISSING:-${B}}", "two"),  # nested
        ("${MISSING:-${ALSO_MISSING:-deep}}", "deep"),
        ("$${A}", "${A}"),  # escaped
        ("$$", "$"),
        ("costs $5", "costs $5"),
        ("", ""),
    ],
)
def test_interpolation(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "1", "B": "two", "EMPTY": ""}) == expected


@pytest.mark.parametrize("text", ["${MISSING}", "${A", "${1X}", "${A:-unclosed", "${}"])
def test_interpolation_errors_never_become_empty_strings(text: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, {"A": "1"})


def test_dotenv_parsing() -> None:
    text = "# comment\n\nexport A=1\nB = two words # note\nC=\"line\\nbreak\"\nD='$literal'\nE=\n"
    assert parse_dotenv(text) == {"A": "1", "B": "two words", "C": "line\nbreak", "D": "$literal", "E": ""}
    with pytest.raises(ValueError, match="line 1"):
        parse_dotenv("not a pair\n")


def test_precedence_shell_then_env_file_then_config(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("FROM_FILE=file\nBOTH=file\nLAYERED=file-a\n")
    (tmp_path / "b.env").write_text("LAYERED=file-b\n")
    server = ServerConfig(
        name="s", command="x", env={"BOTH": "config", "REF": "${FROM_FILE}-${SHELL_ONLY}"}, env_file=("a.env", "b.env")
    )
    shell = {"PATH": "/bin", "HOME": "/h", "SHELL_ONLY": "shell", "BOTH": "shell", "FROM_FILE": "shell"}
    resolved = resolve(server, tmp_path, shell, [])
    assert resolved.ok, resolved.problems
    env = resolved.env
    assert (env["BOTH"], env["FROM_FILE"], env["LAYERED"], env["REF"]) == ("config", "file", "file-b", "file-shell")
    sources = resolved.sources()
    assert sources["BOTH"] == "config"
    assert sources["LAYERED"] == f"env_file {tmp_path / 'b.env'}"


def test_inherit_env_false_or_a_list_keeps_path_and_home(tmp_path: Path) -> None:
    shell = {"PATH": "/bin", "HOME": "/h", "KEEP": "k", "DROP": "d"}
    none = resolve(ServerConfig(name="s", command="x", inherit_env=False), tmp_path, shell, [])
    assert none.env == {"PATH": "/bin", "HOME": "/h"}
    some = resolve(ServerConfig(name="s", command="x", inherit_env=("KEEP",)), tmp_path, shell, [])
    assert some.env == {"PATH": "/bin", "HOME": "/h", "KEEP": "k"}


def test_every_problem_is_listed_with_its_rule_and_source(tmp_path: Path) -> None:
    server = ServerConfig(name="s", command="x", args=("--key=${NOPE}",), env={"SHORT": "abc", "EMPTY": ""})
    rules = [
        EnvRule("MISSING"),
        EnvRule("SHORT", min_length=8),
        EnvRule("EMPTY", non_empty=True),
        EnvRule("SHORT", pattern=r"sk-\w+"),
        EnvRule("OPTIONAL", required=False, pattern=r"\d+"),
    ]
    resolved = resolve(server, tmp_path, {"PATH": "/bin"}, rules)
    text = "\n".join(resolved.problems)
    assert "args[0]: ${NOPE} is not set and has no default" in text
    assert "MISSING: missing (expected from the shell)" in text
    assert "SHORT: shorter than 8 characters, does not match 'sk-\\\\w+'" in text  # "; " parts variables
    assert "EMPTY: empty" in text
    assert "OPTIONAL" not in text
    statuses = {v.name: v.status for v in resolved.variables}
    assert statuses["MISSING"] == "missing"
    assert statuses["SHORT"] == "invalid"
    assert "abc" not in json.dumps([v.to_json() for v in resolved.variables])


def test_two_rules_that_say_the_same_of_a_variable_say_it_once() -> None:
    server = ServerConfig(name="t", command="x", required_env=("KQ",))
    rules = [EnvRule("KQ", origin="required_env"), EnvRule("KQ", pattern="[0-9]+", min_length=4)]
    resolved = resolve(server, Path("/"), {"PATH": "/bin"}, rules)
    assert resolved.problems == ["KQ: missing (expected from the shell)"]


def test_a_variable_behind_an_unset_reference_is_shown_missing_not_set(tmp_path: Path) -> None:
    server = ServerConfig(name="s", command="x", env={"TOK": "${UNSET_ONE}", "OK": "${UNSET_TWO:-fine}"})
    rows = {v.name: v for v in resolve(server, tmp_path, {"PATH": "/bin"}, []).variables}
    assert (rows["TOK"].status, rows["TOK"].problem) == ("missing", "a variable it references is not set")
    assert (rows["UNSET_ONE"].source, rows["UNSET_ONE"].status) == ("-", "missing")
    assert "${UNSET_ONE} is not set and has no default" in str(rows["UNSET_ONE"].problem)
    assert (rows["OK"].status, rows["UNSET_TWO"].source, rows["UNSET_TWO"].status) == ("set", "default", "unset")


def needs_env(world: Env, **settings: Any) -> None:
    world.write_config({"amap": fixture_server("needs-env", required_env=["FIXTURE_API_KEY"], **settings)})


def test_preflight_refuses_to_spawn_without_a_required_variable(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIXTURE_API_KEY", raising=False)
    needs_env(env)
    proc = env.run("start", "amap")
    assert proc.returncode == 7, proc.stderr
    assert "environment check failed, nothing was started" in proc.stderr
    assert "FIXTURE_API_KEY: missing" in proc.stderr
    result = env.json("start", "amap", expect=7)["results"][0]
    assert result["outcome"] == "env_invalid"
    assert result["error"]["type"] == "env_missing"
    assert env.our_processes() == []
    assert not (env.paths.servers / "amap" / "state.json").exists()  # no failure counted anywhere
    assert env.status("amap")["total_failures"] == 0


def test_env_file_satisfies_the_check_and_reaches_the_server(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIXTURE_API_KEY", raising=False)
    (env.workdir / "amap.env").write_text(f"FIXTURE_API_KEY={SECRET}\n")
    needs_env(env, env_file="amap.env")
    assert env.run("start", "amap").returncode == 0
    server = psutil.Process(env.status("amap")["pid"])
    assert server.environ()["FIXTURE_API_KEY"] == SECRET
    assert "MCPCTL_INSTANCE" in server.environ()


def test_rules_added_from_the_cli_apply_on_the_next_start(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXTURE_API_KEY", "short")
    needs_env(env)
    added = env.json("env", "rule", "add", "amap", "FIXTURE_API_KEY", "--min-length", "12", "--pattern", r"sk-.*")
    assert added["rules"][0]["min_length"] == 12
    assert any(r["origin"] == "mcpctl env rule" for r in env.json("env", "rules")["rules"])
    refused = env.run("start", "amap")
    assert refused.returncode == 7
    assert "shorter than 12 characters" in refused.stderr
    check = env.json("env", "check", "amap", expect=7)["servers"][0]
    status = {v["name"]: v for v in check["variables"]}["FIXTURE_API_KEY"]
    assert (status["status"], status["source"]) == ("invalid", "shell")
    assert env.run("env", "rule", "rm", "amap", "FIXTURE_API_KEY").returncode == 0
    assert env.run("start", "amap").returncode == 0
    assert env.run("env", "rule", "rm", "amap", "FIXTURE_API_KEY").returncode == 2  # nothing left to remove


def test_a_broken_value_names_every_rule_it_breaks_and_where_it_came_from(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key from the shell through ${...} in the env table, too short and not hex: the pre-flight named only its
    first broken rule, and said it was expected from the config's env table (it was given, by the shell)."""
    value = "not-a-hex-key"  # a secret, as every value: never shown
    hexed = {"pattern": "[0-9a-f]{32}", "min_length": 32}
    (env.workdir / "k.env").write_text("FILE_KEY=q7z\n")
    monkeypatch.setenv("MY_KEY", value)
    rules = {"FIXTURE_API_KEY": hexed, "FILE_KEY": {"min_length": 10}}
    server = fixture_server("needs-env", env={"FIXTURE_API_KEY": "${MY_KEY}"}, env_file="k.env", env_rules=rules)
    env.write_config({"amap": server})
    proc = env.run("start", "amap")
    assert proc.returncode == 7, proc.stderr
    lines = proc.stderr.splitlines()
    broken = "shorter than 32 characters, does not match '[0-9a-f]{32}'"
    assert f"  - FIXTURE_API_KEY: {broken} (from the shell through ${{MY_KEY}} in the config's env table)" in lines
    assert f"  - FILE_KEY: shorter than 10 characters (from env_file {env.workdir / 'k.env'})" in lines, lines
    as_json = env.run("start", "amap", "--json")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    chinese = env.run("start", "amap").stderr
    assert "FIXTURE_API_KEY：短于 32 个字符，不匹配 '[0-9a-f]{32}'（来自" in chinese
    assert "shell 环境，经由配置的 env 表中的 ${MY_KEY}）" in chinese
    for text in (proc.stdout, proc.stderr, as_json.stdout, chinese):
        assert value not in text
        assert "q7z" not in text


def test_unresolved_reference_is_exit_7_naming_it(env: Env) -> None:
    env.write_config({"svc": fixture_server("healthy", args=["--token=${NOT_SET_ANYWHERE}"])})
    proc = env.run("start", "svc")
    assert proc.returncode == 7
    assert "${NOT_SET_ANYWHERE} is not set and has no default" in proc.stderr


def test_restart_with_a_broken_environment_leaves_the_server_running(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXTURE_API_KEY", SECRET)
    needs_env(env)
    assert env.run("start", "amap").returncode == 0
    pid = env.status("amap")["pid"]
    monkeypatch.delenv("FIXTURE_API_KEY")
    assert env.run("restart", "amap").returncode == 7
    assert env.status("amap")["pid"] == pid


def test_config_rules_are_validated(env: Env) -> None:
    env.config.write_text(
        '[env_rules.KEY]\npattern = "("\n[servers.a]\ncommand = "x"\n[servers.a.env_rules.OTHER]\nminimum = 3\n'
    )
    proc = env.run("env", "check", "--all")
    assert proc.returncode == 2
    assert "servers.a.env_rules.OTHER: unknown field 'minimum'" in proc.stderr
    assert "env_rules.KEY.pattern: invalid regular expression" in proc.stderr


def test_secrets_never_leak(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recognisable secret through every command and scenario: zero hits in outputs and the state dir."""
    monkeypatch.delenv("FIXTURE_API_KEY", raising=False)
    (env.workdir / "amap.env").write_text(f"FIXTURE_API_KEY={SECRET}\n")
    crashy = fixture_server("needs-env", env={"FIXTURE_API_KEY": SECRET, "CRASH_AFTER_KEY": "1"}, restart="never")
    crashy["args"] += ["--key", "${FIXTURE_API_KEY}"]  # the secret in argv too, through interpolation
    env.write_config(
        {
            "amap": fixture_server("needs-env", env_file="amap.env", required_env=["FIXTURE_API_KEY"]),
            "crashy": crashy,
        }
    )
    outputs = [
        env.run("start", "amap"),
        env.run("start", "crashy"),
        env.run("start", "crashy", "--json"),
        env.run("status"),
        env.run("status", "--json"),
        env.run("list"),
        env.run("list", "--json"),
        env.run("env", "check", "--all"),
        env.run("env", "check", "--all", "--json"),
        env.run("env", "rules", "--json"),
        env.run("restart", "amap", "--json"),
        env.run("logs", "amap", "crashy", "-n", "100"),
        env.run("logs", "crashy", "--json"),
        env.run("events", "--json"),
        env.run("tools", "amap"),
        env.run("call", "amap", "echo", "text=hello"),
        env.run("doctor", "--json"),
    ]
    assert outputs[0].returncode == 0
    assert outputs[1].returncode == 4
    assert "using key ***" in outputs[1].stderr  # the server's own stderr, masked on its way to the log
    shim = psutil.Process(env.status("amap")["shim_pid"])
    assert SECRET not in " ".join(shim.cmdline())
    outputs.append(env.run("stop", "--all"))
    for proc in outputs:
        assert SECRET not in proc.stdout + proc.stderr, proc.args
    hits = [path for path in env.home.rglob("*") if path.is_file() and SECRET.encode() in path.read_bytes()]
    assert hits == []
    assert "using key ***" in (env.paths.logs / "crashy.log").read_text()


def test_environment_resolution_is_logged_by_name_and_source(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXTURE_API_KEY", SECRET)
    needs_env(env, env={"EXTRA": "value-from-config"})
    assert env.run("start", "amap").returncode == 0
    log = (env.paths.logs / "amap.log").read_text()
    assert "EXTRA (config)" in log
    assert "variable(s) from the shell" in log
    assert SECRET not in log
    assert "value-from-config" not in log


def test_env_check_without_problems_is_exit_0(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIXTURE_API_KEY", SECRET)
    needs_env(env)
    proc = env.run("env", "check")
    assert proc.returncode == 0
    assert proc.stdout.startswith("amap: ok")
    assert "FIXTURE_API_KEY" in proc.stdout
    assert SECRET not in proc.stdout
