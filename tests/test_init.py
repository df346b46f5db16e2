"""`mcpctl init`: a starter config that loads (its commented examples too), never an overwrite without
--force, and client JSON converted to TOML that loads to the same servers, with ${VAR} kept as written."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from mcpctl.config.load import load
from mcpctl.config.template import starter
from tests.conftest import TINY, Env

SECRET = "ghp_Zq8Xv3Rt6Yp1Wm4Nb7Lk2Zq8Xv3Rt6Yp1W"


def _launchers(env: Env, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """PATH holds only these launchers: scripts that run the tiny fixture server whatever they are asked."""
    bin_dir = env.workdir.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        (bin_dir / name).write_text(f"#!/bin/sh\nexec {sys.executable} {TINY}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_init_without_uvx_npx_or_docker_writes_a_starter_that_starts(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _launchers(env, monkeypatch)
    proc = env.run("init")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "wrote mcpctl.toml with 1 server(s) (demo)"
    assert "# Launchers found here: none (not found: uvx, npx, docker)" in env.config.read_text()
    started = env.run("start", "--all")
    assert started.returncode == 0, started.stderr
    assert env.run("call", "demo", "echo", "text=here").stdout == "here\n"


def test_init_with_npx_but_no_uvx_gives_the_npx_server_time_for_a_cold_download(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    _launchers(env, monkeypatch, "npx")
    assert env.run("init").returncode == 0
    memory = load(env.config).servers["memory"]
    assert (memory.command, memory.args[0], memory.startup_timeout) == ("npx", "-y", 120)
    assert "the first run downloads the package" in env.config.read_text()
    started = env.run("start", "--all")
    assert started.returncode == 0, started.stderr


def test_init_writes_a_starter_that_loads(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _launchers(env, monkeypatch, "uvx", "npx")
    proc = env.run("init")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["wrote mcpctl.toml with 1 server(s) (time)", "next: mcpctl start --all"]
    config = load(env.config)
    assert list(config.servers) == ["time"]
    assert (config.servers["time"].command, config.servers["time"].args) == ("uvx", ("mcp-server-time",))
    assert env.run("list", "--names").stdout == "time\n"


def test_the_starters_commented_examples_load_when_uncommented(tmp_path: Path) -> None:
    """Every commented `# key = value` and `# [table]` line is valid TOML that the loader accepts."""
    uncommented = re.sub(r"(?m)^# (?=\[|[a-z_]+ = )", "", starter(lambda _: None).text)
    path = tmp_path / "mcpctl.toml"
    path.write_text(uncommented)
    example = load(path).servers["example"]
    assert example.env == {"API_KEY": "${EXAMPLE_API_KEY}"}
    assert example.required_env == ("EXAMPLE_API_KEY",)
    assert (example.restart, example.backoff_max, example.health_interval) == ("on-failure", 60, 30)
    assert (example.readiness, example.ready_pattern) == ("log", "listening on")
    assert set(example.env_rules) == {"EXAMPLE_API_KEY"}


def test_init_never_overwrites_without_force(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _launchers(env, monkeypatch, "uvx")
    env.config.write_text("# mine\n")
    proc = env.run("init")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: mcpctl.toml already exists",
        "hint: pass --force to overwrite it, or name another PATH",
    ]
    assert env.config.read_text() == "# mine\n"
    assert env.run("init", "--force").returncode == 0
    assert "[servers.time]" in env.config.read_text()


def test_init_into_a_folder_or_the_global_config_path(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _launchers(env, monkeypatch, "uvx")
    (env.workdir / "conf").mkdir()
    proc = env.run("init", "conf", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"schema": 1, "path": "conf/mcpctl.toml", "servers": ["time"], "from": None}
    proc = env.run("-f", "deep/er/other.toml", "init")
    assert proc.returncode == 0, proc.stderr
    assert "next: mcpctl -f deep/er/other.toml start --all" in proc.stdout
    assert list(load(env.workdir / "deep/er/other.toml").servers) == ["time"]


def test_init_from_claude_desktop_json(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)  # in the shell: it must not end up in the file
    servers = {
        "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
        "github": {
            "command": "docker",
            "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "${GITHUB_TOKEN}"},
        },
        "slow": {"command": "x", "startup_timeout": 120, "restart": "never"},
    }
    source = env.workdir / "claude_desktop_config.json"
    source.write_text(json.dumps({"mcpServers": servers}))
    proc = env.run("init", "--from", source.name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote mcpctl.toml with 3 server(s) (filesystem, github, slow)")
    text = env.config.read_text()
    assert SECRET not in text
    assert 'GITHUB_PERSONAL_ACCESS_TOKEN = "${GITHUB_TOKEN}"' in text
    assert "startup_timeout = 120\n" in text
    assert "stop_timeout" not in text  # defaults are left out
    assert load(env.config).servers == load(source).servers


def test_init_from_vscode_json_rebases_relative_paths(env: Env) -> None:
    folder = env.workdir / ".vscode"
    folder.mkdir()
    servers = {"local": {"type": "stdio", "command": "python3", "args": ["server.py"], "cwd": "tools"}}
    (folder / "mcp.json").write_text(json.dumps({"servers": servers, "inputs": []}))
    proc = env.run("init", "--from", ".vscode/mcp.json", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["servers"] == ["local"]
    config = load(env.config)
    local = config.servers["local"]
    # relative to the workspace (the folder of .vscode), as VS Code means it and as `config import` reads it
    assert (local.command, local.args, local.cwd) == ("python3", ("server.py",), "tools")
    assert config.base_dir / "tools" == env.workdir / "tools"
    (env.workdir / "conf").mkdir()
    assert env.run("init", "conf", "--from", ".vscode/mcp.json").returncode == 0
    assert load(env.workdir / "conf" / "mcpctl.toml").servers["local"].cwd == str(env.workdir / "tools")


def test_init_from_reads_client_json_as_config_import_does(env: Env) -> None:
    """Client-only keys are left out with a note, a disabled server is skipped, envFile is env_file."""
    servers = {
        "local": {"command": "x", "envFile": "local.env", "autoApprove": ["search"], "env": {"K": "${env:K}"}},
        "remote": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer x"}},
        "off": {"command": "old-server", "disabled": True},
    }
    (env.workdir / "c.json").write_text(json.dumps({"mcpServers": servers}))
    proc = env.run("init", "--from", "c.json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote mcpctl.toml with 2 server(s) (local, remote)")
    assert proc.stderr.splitlines() == [
        "note: local: 'autoApprove' left out (mcpctl does not use it)",
        "note: off: disabled in the source file, not imported",
    ]
    local = load(env.config).servers["local"]
    assert (local.env_file, local.env) == (("local.env",), {"K": "${K}"})
    imported = env.run("-f", "imported.toml", "config", "import", "c.json")
    assert imported.returncode == 0, imported.stderr
    assert load(env.config).servers == load(env.workdir / "imported.toml").servers


def test_init_notes_env_values_written_as_they_are(env: Env) -> None:
    (env.workdir / "c.json").write_text(json.dumps({"mcpServers": {"a": {"command": "x", "env": {"KEY": "v"}}}}))
    proc = env.run("init", "--from", "c.json")
    assert proc.returncode == 0
    assert proc.stderr.startswith("note: a: env KEY written as in c.json")


@pytest.mark.parametrize(
    ("body", "name", "expected"),
    [
        (None, "missing.json", "error: --from missing.json: no such file"),
        ('[servers.a]\ncommand = "x"\n', "c.toml", "error: --from c.toml: expected a client's JSON config"),
        ('{"mcpServers": {"a b": {"command": "x"}}}', "c.json", "error: c.json: servers.a b: invalid server name"),
    ],
)
def test_init_from_a_bad_file_is_exit_2_and_writes_nothing(
    env: Env, body: str | None, name: str, expected: str
) -> None:
    if body is not None:
        (env.workdir / name).write_text(body)
    proc = env.run("init", "--from", name)
    assert proc.returncode == 2
    assert expected in proc.stderr.splitlines()[0]
    assert proc.stderr.splitlines()[-1].startswith("hint: ")
    assert not env.config.exists()
