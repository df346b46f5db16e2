"""Config loading and validation: every bad input is exit 2 with file, server and field named."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import psutil
import pytest

from mcpctl.config.load import load
from mcpctl.config.views import config_hash
from mcpctl.errors import ConfigError
from tests.conftest import Env

TINY = Path(__file__).parent / "fixtures" / "tiny.py"


def test_valid_toml_gets_defaults_and_resolves_cwd(tmp_path: Path) -> None:
    path = tmp_path / "mcpctl.toml"
    path.write_text(
        '[servers.a]\ncommand = "npx"\nargs = ["-y", "x"]\ncwd = "sub"\n[servers.b]\nurl = "http://h:1/mcp"\n'
    )
    config = load(path)
    a, b = config.servers["a"], config.servers["b"]
    assert (a.command, a.args, a.cwd) == ("npx", ("-y", "x"), "sub")  # resolved at start, against base_dir
    assert config.base_dir == tmp_path
    assert (a.startup_timeout, a.stop_timeout, a.transport) == (60.0, 10.0, "stdio")
    assert (b.url, b.transport) == ("http://h:1/mcp", "http")


def test_config_hash_changes_with_command_but_not_with_timeouts(tmp_path: Path) -> None:
    def digest() -> str:
        config = load(path)
        return config_hash(config, config.servers["a"])

    path = tmp_path / "c.toml"
    path.write_text('[servers.a]\ncommand = "x"\nstartup_timeout = 5\n')
    first = digest()
    path.write_text('[servers.a]\ncommand = "x"\nstartup_timeout = 9\n')
    assert digest() == first
    path.write_text('[servers.a]\ncommand = "y"\n')
    assert digest() != first


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[servers.a]\ncommand = "x"\ncomand = "y"\n', "servers.a: unknown field 'comand' (did you mean 'command'?)"),
        ('[servers.a]\ncommand = "x"\nargs = "--flag"\n', "servers.a.args: expected a list of strings"),
        ('[servers.a]\ncommand = "x"\nargs = [1, 2]\n', "servers.a.args: expected a list of strings"),
        ("[servers.a]\nargs = []\n", "servers.a: missing field 'command'"),
        ('[servers.a]\ncommand = ""\n', "servers.a.command: expected a non-empty string"),
        ('[servers.a]\ncommand = "x"\nenv = { KEY = 5 }\n', "servers.a.env.KEY: expected a string"),
        ('[servers.a]\ncommand = "x"\ninherit_env = "yes"\n', "servers.a.inherit_env: expected true, false or a"),
        ('[servers.a]\ncommand = "x"\nstop_timeout = -1\n', "servers.a.stop_timeout: expected a positive number"),
        ('[servers.a]\ncommand = "x"\nstartup_timeout = true\n', "servers.a.startup_timeout: expected a positive"),
        ('[servers.a]\nurl = "ftp://x"\n', "servers.a.url: expected an http:// or https:// URL"),
        ('[servers."a b"]\ncommand = "x"\n', "servers.a b: invalid server name"),
        ('[servers.a]\ncommand = "x"\n[servers.A]\ncommand = "y"\n', "servers.A: duplicate of server 'a'"),
        ('[servers.a]\ncommand = "x"\n[servers.a]\ncommand = "y"\n', "invalid TOML"),
        ('[servers.a\ncommand = "x"\n', "invalid TOML"),
        ('[server.a]\ncommand = "x"\n', "unknown top-level key 'server'"),
    ],
)
def test_bad_config_is_exit_2_naming_file_server_and_field(env: Env, body: str, expected: str) -> None:
    env.config.write_text(body)
    proc = env.run("start", "--all")
    assert proc.returncode == 2, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"error: {env.config}"), first
    assert expected in proc.stderr
    assert "hint:" in proc.stderr


def test_toml_left_open_at_the_end_of_the_file_names_a_line_as_its_hint_says(env: Env) -> None:
    """tomllib says "(at end of document)" there, and the hint said "fix the syntax at the line named"."""
    env.config.write_text('[servers.a]\ncommand = "x"\nargs = ["-v",\n\n')
    proc = env.run("list")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {env.config}: invalid TOML: Invalid value (at the end of the file, after line 3)",
        "hint: close what is still open at the end of the file (a bracket, brace or quote at line 3 or before)",
    ]
    env.config.write_text('[servers.a\ncommand = "x"\n')  # tomllib names the line: the hint stays
    assert env.run("list").stderr.endswith("(at line 1, column 11)\nhint: fix the syntax at the line named\n")


def test_a_mistyped_env_or_header_value_is_said_by_its_kind_never_shown_and_every_one_is_named(env: Env) -> None:
    """An unquoted PIN or token is still a secret: the problem says "a number", and names each wrong key."""
    env.config.write_text(
        '[servers.a]\ncommand = "x"\nenv = { PIN = 4711080815, TOKEN = 31415926535, OK = "y", FLAG = true }\n'
        "headers = { X = 12.5 }\n"
    )
    for proc in (env.run("config", "validate"), env.run("config", "validate", "--json"), env.run("start", "a")):
        assert proc.returncode == 2, proc.stderr
        said = proc.stdout + proc.stderr
        assert not {"4711080815", "31415926535", "12.5"} & set(re.findall(r"[\d.]+", said)), said
        for key, kind in (("PIN", "a number"), ("TOKEN", "a number"), ("FLAG", "a boolean"), ("X", "a number")):
            assert f"{key}: expected a string (quote the value), got {kind}" in said, said


def test_toml_syntax_error_names_the_line(env: Env) -> None:
    env.config.write_text('[servers.a]\ncommand = "x"\nargs = [\n')
    proc = env.run("list")
    assert proc.returncode == 2
    assert "line" in proc.stderr


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[servers.a]\ncommand = 1\n[servers.b]\nargs = "x"\ncommand = "y"\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert len(caught.value.details) == 2


def test_a_malformed_reference_is_a_config_error_in_every_setting_that_has_references(env: Env) -> None:
    """Syntax is the config text's: validate names each one (exit 2), and start refuses the config, not the
    environment (exit 7), whatever the shell holds; an unset ${VAR} stays the environment's."""
    secret = "sk-live-Zq8Xv3Rt6Yp1Wm4Nb7Lk2"
    servers = {
        "t": {
            "command": "true",
            "args": ["ok", "${BROKEN"],
            "env": {"A": "${X:-unterminated", "B": f"{secret}${{", "FINE": "${UNSET_HERE}", "LIT": "$${x"},
            "cwd": "${}",
            "headers": {"H": "${env:TOKEN}"},
        },
        "u": {"url": "http://h:1/${1X}", "startup_timeout": 0},  # a wrong reference beside another problem
    }
    env.write_config(servers)
    proc = env.run("config", "validate", "--json")
    assert proc.returncode == 2, proc.stderr
    found = {(p["server"], p["field"]): p["message"] for p in json.loads(proc.stdout)["problems"]}
    assert set(found) == {
        ("t", "args[1]"),
        ("t", "env.A"),
        ("t", "env.B"),
        ("t", "cwd"),
        ("t", "headers.H"),
        ("u", "url"),
        ("u", "startup_timeout"),
    }
    assert "close the '${X:-'" in found["t", "env.A"]
    assert "write ${TOKEN}" in found["t", "headers.H"]
    assert secret not in proc.stdout  # a value may be a secret: the message names a position
    start = env.run("start", "t")
    assert start.returncode == 2, start.stderr
    assert f"error: {env.config}: servers.t.args[1]: expected '}}' or ':-' after the '${{BROKEN'" in start.stderr


def test_a_client_files_variables_mean_with_f_what_import_writes(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A VS Code file given with -f works as it is: `${input:ID}` is read from the environment variable
    import would write (unset: exit 7 naming it, nothing spawned), `${env:X}` is `${X}`, `${workspaceFolder}`
    the folder above `.vscode/` (a `$` in it is a path's, not a reference), `${userHome}` is $HOME."""
    workspace = env.workdir / "my$work"
    (workspace / ".vscode").mkdir(parents=True)
    path = workspace / ".vscode" / "mcp.json"
    server = {"command": sys.executable, "args": [str(TINY), "${workspaceFolder}/data"]}
    server["env"] = {"KEY": "${input:api-key}", "WHO": "${env:USER_NAME}", "HOMEDIR": "${userHome}"}
    path.write_text(json.dumps({"inputs": [{"id": "api-key", "type": "promptString"}], "servers": {"v": server}}))
    monkeypatch.setenv("USER_NAME", "ann")
    assert env.run("-f", str(path), "config", "validate").returncode == 0
    missing = env.run("-f", str(path), "start", "v")
    assert missing.returncode == 7, missing.stderr
    assert "API_KEY" in missing.stderr
    monkeypatch.setenv("API_KEY", "k-1")
    started = env.run("-f", str(path), "start", "v")
    assert started.returncode == 0, started.stderr
    process = psutil.Process(env.json("-f", str(path), "status", "v")["servers"][0]["pid"])
    seen = process.environ()
    assert (seen["KEY"], seen["WHO"], seen["HOMEDIR"]) == ("k-1", "ann", os.environ["HOME"])
    assert process.cmdline()[-1] == f"{workspace}/data"
    assert env.run("config", "import", str(path)).returncode == 0
    assert '"${API_KEY}"' in env.config.read_text()  # what the import translates it to


def test_json_mcpservers_file_is_accepted(env: Env) -> None:
    path = env.workdir / "claude_desktop_config.json"
    servers = {"time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}}}
    path.write_text(json.dumps({"mcpServers": servers}))
    listing = env.json("-f", str(path), "list")
    assert listing["servers"][0]["name"] == "time"
    assert listing["servers"][0]["command"] == "uvx"
    assert listing["servers"][0]["env"] == ["TZ"]


def test_a_client_json_file_as_its_client_writes_it_is_accepted(env: Env) -> None:
    """What Claude Desktop, Cursor, Cline and VS Code keep in their files (comments, trailing commas, their own
    keys, `disabled`) does not stop `-f` from using the file; a misspelt setting still does."""
    path = env.workdir / "mcp.json"
    path.write_text(
        "{\n  // my servers\n"
        '  "mcpServers": {\n'
        '    "time": {"command": "uvx", "args": ["mcp-server-time"], "autoApprove": ["get_time"],\n'
        '             "alwaysAllow": [], "timeout": 60, "description": "clock", "disabledTools": []},\n'
        '    "off": {"command": "x", "disabled": true},\n'
        '    "on": {"command": "x", "disabled": false, "envFile": "keys.env"},\n'
        "  },\n}\n"
    )
    (env.workdir / "keys.env").write_text("K=v\n")
    (env.workdir / "keys.env").chmod(0o600)
    listing = {s["name"]: s for s in env.json("-f", str(path), "list")["servers"]}
    assert listing["time"]["command"] == "uvx"
    config = load(path)
    assert ("off" in config.disabled, "on" in config.servers) == (True, True)
    assert config.servers["on"].env_file == ("keys.env",)
    path.write_text('{"mcpServers": {"t": {"command": "x", "startup_timout": 5}}}')
    proc = env.run("-f", str(path), "list")
    assert proc.returncode == 2
    assert "unknown field 'startup_timout' (did you mean 'startup_timeout'?)" in proc.stderr


def test_vscode_servers_key_with_type_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"servers": {"fs": {"type": "stdio", "command": "npx", "args": ["x"]}}}))
    assert load(path).servers["fs"].command == "npx"


def test_json_duplicate_server_is_an_error(env: Env) -> None:
    path = env.workdir / "c.json"
    path.write_text('{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}')
    proc = env.run("-f", str(path), "list")
    assert proc.returncode == 2
    assert "duplicate key 'a'" in proc.stderr


def test_json_without_mcpservers_is_an_error(env: Env) -> None:
    path = env.workdir / "c.json"
    path.write_text('{"servers": []}')
    proc = env.run("-f", str(path), "list", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["type"] == "config_invalid"


def test_unknown_server_name_is_exit_8_with_suggestion(env: Env) -> None:
    env.write_config({"demo": {"command": "x"}})
    proc = env.run("start", "dmeo")
    assert proc.returncode == 8
    assert "unknown server 'dmeo'" in proc.stderr
    assert "did you mean 'demo'?" in proc.stderr
    error = env.json("status", "dmeo", expect=8)["error"]
    assert error["type"] == "unknown_server"
    assert error["exit_code"] == 8


def test_missing_config_file_is_exit_2(env: Env) -> None:
    proc = env.run("-f", "nope.toml", "start", "--all")
    assert proc.returncode == 2
    assert "nope.toml" in proc.stderr
    assert env.run("start", "--all").returncode == 2  # nothing found upward either


def test_config_found_upward_and_through_env_var(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"up": {"command": "x"}})
    nested = env.workdir / "a" / "b"
    nested.mkdir(parents=True)
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "-m", "mcpctl", "list"], cwd=nested, capture_output=True, text=True, check=True
    )
    assert listed.stdout.splitlines()[1].split()[0] == "up"  # under the table's header
    other = env.workdir / "other.toml"
    other.write_text('[servers.viaenv]\ncommand = "x"\n')
    monkeypatch.setenv("MCPCTL_CONFIG", str(other))
    assert env.json("list")["servers"][0]["name"] == "viaenv"


def test_start_without_names_is_a_usage_error(env: Env) -> None:
    env.write_config({"demo": {"command": "x"}})
    proc = env.run("start")
    assert proc.returncode == 2
    assert "--all" in proc.stderr


def test_list_never_shows_env_values(env: Env) -> None:
    env.write_config({"demo": {"command": "x", "args": ["--key=hunter2secret"], "env": {"API_KEY": "hunter2secret"}}})
    for args in (["list"], ["list", "--json"]):
        proc = env.run(*args)
        assert proc.returncode == 0
        assert "hunter2secret" not in proc.stdout + proc.stderr
        assert "API_KEY" in proc.stdout


def test_a_config_path_that_is_not_a_file_and_an_unknown_project_are_said_as_they_are(env: Env) -> None:
    for path, what in ((env.workdir, "is a directory"), (Path("/dev/null"), "is not a file")):
        proc = env.run("-f", str(path), "status")
        assert proc.returncode == 2, proc.stderr
        assert f"config file {path} (from -f/--config) {what}" in proc.stderr
    proc = env.run("status", "nosuchproject/x")
    assert proc.returncode == 8, proc.stderr
    assert "unknown server 'x': no config file was found" in proc.stderr
