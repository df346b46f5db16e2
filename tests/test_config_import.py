"""config import/export: every client dialect, merge and replace, the round trip, and safe writes."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import psutil
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpctl.config.document import document, dumps, write_config
from mcpctl.config.importer import read, to_config
from mcpctl.config.load import from_document
from mcpctl.errors import ConfigConflictError
from mcpctl.paths import Paths
from tests.conftest import FIXTURE, Env, wait_for


def imported(env: Env, source: Path, *args: str) -> dict[str, Any]:
    proc = env.run("config", "import", str(source), *args)
    assert proc.returncode == 0, proc.stderr
    return tomllib.loads(env.config.read_text())["servers"]


def test_claude_desktop_config(env: Env) -> None:
    source = env.workdir / "claude_desktop_config.json"
    servers = {
        "time": {"command": "uvx", "args": ["mcp-server-time", "--local-timezone=UTC"], "env": {"TZ": "UTC"}},
        "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    }
    source.write_text(json.dumps({"mcpServers": servers, "globalShortcut": "Ctrl+Space"}))
    preview = env.run("config", "import", str(source), "--dry-run")
    assert preview.returncode == 0
    assert "+ time (added" in preview.stdout
    assert "+ fs (added" in preview.stdout
    assert not env.config.exists()
    assert imported(env, source) == servers
    assert [s["name"] for s in env.json("list")["servers"]] == ["time", "fs"]


def test_cursor_config_with_env_references_and_client_only_settings(env: Env) -> None:
    source = env.workdir / ".cursor" / "mcp.json"
    source.parent.mkdir()
    servers = {
        "brave": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-brave-search"],
            "env": {"BRAVE_API_KEY": "${env:BRAVE_API_KEY}"},
            "autoApprove": ["search"],
        },
        "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer x"}},
        "off": {"command": "old-server", "disabled": True},
    }
    source.write_text(json.dumps({"mcpServers": servers}))
    report = env.json("config", "import", str(source))
    assert [c["name"] for c in report["changes"]] == ["brave", "remote"]
    assert "brave: 'autoApprove' left out (mcpctl does not use it)" in report["notes"]
    assert "off: disabled in the source file, not imported" in report["notes"]
    written = tomllib.loads(env.config.read_text())["servers"]
    assert written["brave"]["env"] == {"BRAVE_API_KEY": "${BRAVE_API_KEY}"}
    assert written["remote"] == {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer x"}}


def test_vscode_config_with_servers_inputs_and_workspace_folder(env: Env) -> None:
    source = env.workdir / "project" / ".vscode" / "mcp.json"
    source.parent.mkdir(parents=True)
    config = {
        "inputs": [{"type": "promptString", "id": "github-token", "description": "GitHub PAT", "password": True}],
        "servers": {
            "github": {
                "type": "stdio",
                "command": "docker",
                "args": ["run", "-i", "--rm", "-e", "GITHUB_TOKEN", "ghcr.io/github/github-mcp-server"],
                "env": {"GITHUB_TOKEN": "${input:github-token}"},
                "envFile": "${workspaceFolder}/.env",
            },
            "files": {"type": "stdio", "command": "npx", "args": ["server", "${workspaceFolder}"], "cwd": "tools"},
            "web": {"type": "http", "url": "http://127.0.0.1:8931/mcp"},
        },
    }
    source.write_text(json.dumps(config))
    report = env.json("config", "import", str(source))
    assert any("set GITHUB_TOKEN" in note for note in report["notes"])
    written = tomllib.loads(env.config.read_text())["servers"]
    workspace = str(env.workdir / "project")
    assert written["github"]["env"] == {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}
    assert written["github"]["env_file"] == [f"{workspace}/.env"]
    assert written["files"]["args"] == ["server", workspace]
    assert written["files"]["cwd"] == f"{workspace}/tools"  # relative to the workspace, as VS Code means it
    assert written["web"] == {"url": "http://127.0.0.1:8931/mcp"}


def test_a_cursor_files_workspace_is_the_folder_above_cursor(env: Env) -> None:
    """Cursor's .cursor/mcp.json (an `mcpServers` file) means by ${workspaceFolder} the project, as VS Code's
    .vscode/mcp.json does, not the .cursor folder."""
    source = env.workdir / "project" / ".cursor" / "mcp.json"
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps({"mcpServers": {"files": {"command": "npx", "args": ["fs", "${workspaceFolder}"]}}}))
    env.json("config", "import", str(source))
    written = tomllib.loads(env.config.read_text())["servers"]
    assert written["files"]["args"] == ["fs", str(env.workdir / "project")]


def test_seed_mcp_servers_json(env: Env) -> None:
    source = env.workdir / "mcp_servers.json"
    servers = {
        "amap-maps": {
            "command": "npx",
            "args": ["-y", "@amap/amap-maps-mcp-server"],
            "env": {"AMAP_MAPS_API_KEY": "${AMAP_MAPS_API_KEY}"},
        },
        "fetch": {"command": "uvx", "args": ["mcp-server-fetch"]},
    }
    source.write_text(json.dumps({"mcpServers": servers}, indent=2))
    assert imported(env, source) == servers


def test_toml_import_rebases_relative_paths(env: Env) -> None:
    other = env.workdir / "elsewhere"
    other.mkdir()
    (other / "mcpctl.toml").write_text(
        '[servers.x]\ncommand = "run"\ncwd = "sub"\nenv_file = "x.env"\nhealth_interval = 5\n'
        '[env_rules.TOKEN]\npattern = "t-.+"\n'
    )
    written = imported(env, other / "mcpctl.toml")
    assert written["x"] == {
        "command": "run",
        "cwd": f"{other}/sub",
        "health_interval": 5.0,
        "env_file": [f"{other}/x.env"],
    }
    assert tomllib.loads(env.config.read_text())["env_rules"] == {"TOKEN": {"pattern": "t-.+"}}


def test_merge_changes_and_adds_replace_also_removes(env: Env) -> None:
    env.write_config({"keep": {"command": "k"}, "change": {"command": "c", "args": ["1"]}})
    source = env.workdir / "in.json"
    source.write_text(json.dumps({"mcpServers": {"change": {"command": "c", "args": ["2"]}, "new": {"command": "n"}}}))

    report = env.json("config", "import", str(source), "--dry-run")
    assert report["dry_run"] is True
    assert [(c["name"], c["change"]) for c in report["changes"]] == [("change", "changed"), ("new", "added")]
    (field,) = report["changes"][0]["fields"]
    assert (field["field"], field["from"], field["to"], field["impact"]) == ("args", ["1"], ["2"], "restart")
    assert "new" not in env.config.read_text()

    assert set(imported(env, source)) == {"keep", "change", "new"}
    assert tomllib.loads(Path(f"{env.config}.bak").read_text())["servers"]["change"]["args"] == ["1"]
    again = env.json("config", "import", str(source))
    assert (again["changes"], again["unchanged"], again["disabled"]) == ([], ["change", "new"], [])

    replaced = env.json("config", "import", str(source), "--replace")
    assert [(c["name"], c["change"]) for c in replaced["changes"]] == [("keep", "removed")]
    assert set(tomllib.loads(env.config.read_text())["servers"]) == {"change", "new"}


def test_round_trip_through_the_cli_is_lossless(env: Env) -> None:
    source = env.workdir / "claude_desktop_config.json"
    servers = {"a": {"command": "npx", "args": ["-y", "a"], "env": {"KEY": "${KEY}", "MODE": "fast"}}}
    source.write_text(json.dumps({"mcpServers": servers}))
    imported(env, source)
    data = tomllib.loads(env.config.read_text())
    data["servers"]["a"]["health_interval"] = 7
    data["alerts"] = {"slow": {"metric": "cpu_percent", "threshold": 50}}
    env.config.write_text(tomli_w.dumps(data))
    for fmt in ("json", "toml"):
        exported = env.workdir / "exports" / f"all.{fmt}"
        exported.parent.mkdir(exist_ok=True)
        assert env.run("config", "export", "-o", str(exported)).returncode == 0
        copy = env.workdir / "exports" / f"copy-{fmt}.toml"
        assert env.run("-f", str(copy), "config", "import", str(exported)).returncode == 0
        assert env.json("-f", str(copy), "list")["servers"] == env.json("list")["servers"]
        assert tomllib.loads(copy.read_text()) == tomllib.loads(env.config.read_text())
    stdout = env.run("config", "export", "--format", "json").stdout
    assert json.loads(stdout)["mcpServers"]["a"]["health_interval"] == 7.0


def test_export_keeps_references_and_never_inlines_the_shell(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_SHELL", "shell-value-never-written")
    (env.workdir / "a.env").write_text("FROM_FILE=file-value-never-written\n")
    env.write_config(
        {"a": {"command": "x", "env": {"TOKEN": "${FROM_SHELL}", "B": "${FROM_FILE:-d}"}, "env_file": "a.env"}}
    )
    for fmt in ("toml", "json"):
        out = env.run("config", "export", "--format", fmt)
        assert out.returncode == 0
        assert "never-written" not in out.stdout
        assert "${FROM_SHELL}" in out.stdout
        assert "${FROM_FILE:-d}" in out.stdout


def test_bad_import_files_are_exit_2_naming_what_is_wrong(env: Env) -> None:
    source = env.workdir / "bad.json"
    source.write_text(json.dumps({"mcpServers": {"x": {"command": "y", "args": "not-a-list"}, "z": {}}}))
    proc = env.run("config", "import", str(source))
    assert proc.returncode == 2
    assert f"error: {source}: servers.x.args: expected a list of strings" in proc.stderr
    assert f"error: {source}: servers.z: missing field 'command'" in proc.stderr
    assert not env.config.exists()
    (env.workdir / "none.json").write_text('{"other": 1}')
    assert env.run("config", "import", "none.json").returncode == 2
    assert env.run("config", "import", "missing.json").returncode == 2
    target = env.workdir / "client.json"
    target.write_text('{"mcpServers": {}}')
    refused = env.run("-f", str(target), "config", "import", str(source))
    assert refused.returncode == 2
    assert "mcpctl writes its config as TOML" in refused.stderr


def test_a_config_changed_between_read_and_write_is_not_overwritten(env: Env) -> None:
    env.write_config({"a": {"command": "x"}})
    source = env.workdir / "in.json"
    source.write_text(json.dumps({"mcpServers": {"b": {"command": "y"}}}))
    env.paths.ensure_config()
    lock = os.open(env.paths.config_lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another mcpctl writing the config: the import has to wait
    importer = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "config", "import", str(source)],
        cwd=env.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def waiting_for_the_lock() -> bool:
        try:
            return any(f.path.endswith("/config/lock") for f in psutil.Process(importer.pid).open_files())
        except psutil.Error:
            return False

    try:
        wait_for(waiting_for_the_lock, timeout=20)  # it has read the config and wants to write
        edited = '[servers.a]\ncommand = "edited meanwhile"\n'
        env.config.write_text(edited)
    finally:
        os.close(lock)
    _, err = importer.communicate(timeout=60)
    assert importer.returncode == 12, err
    assert err.splitlines()[0] == f"error: {env.config} changed while mcpctl was about to write it; nothing was written"
    assert env.config.read_text() == edited
    assert not Path(f"{env.config}.bak").exists()


def test_write_config_is_atomic_keeps_a_backup_and_refuses_a_stale_read(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    path = tmp_path / "mcpctl.toml"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    backup = write_config(paths, path, b"new\n", b"old\n")
    assert (path.read_text(), backup, Path(f"{path}.bak").read_text()) == ("new\n", Path(f"{path}.bak"), "old\n")
    assert (path.stat().st_mode & 0o777, Path(f"{path}.bak").stat().st_mode & 0o777) == (0o640, 0o640)
    with pytest.raises(ConfigConflictError) as caught:
        write_config(paths, path, b"newer\n", b"old\n")  # read before the last write
    assert caught.value.exit_code == 12
    assert path.read_text() == "new\n"
    with pytest.raises(ConfigConflictError):
        write_config(paths, tmp_path / "fresh.toml", b"x\n", b"expected a file\n")
    assert write_config(paths, tmp_path / "fresh.toml", b"x\n", None) is None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


# -- the round trip, for any config ----------------------------------------------------------------

# No `$`: a literal one has several spellings in mcpctl ("$", "$$") and one in JSON; a $ test covers them.
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="$"), max_size=12)
_SOME_TEXT = _TEXT.filter(bool)
_VAR = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True)
_SECONDS = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
_COUNT = st.integers(min_value=1, max_value=1000)
_ALERT = st.fixed_dictionaries(
    {
        "metric": st.sampled_from(["cpu_percent", "rss_mb", "ping_latency_ms", "error_rate"]),
        "threshold": st.integers(0, 10_000) | st.floats(0, 1e4, allow_nan=False),
    },
    optional={
        "comparison": st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
        "for": st.sampled_from(["0", "30s", "5m", "2h"]) | st.integers(0, 600),
        "severity": st.sampled_from(["info", "warning", "critical"]),
        "actions": st.lists(st.sampled_from(["log", "restart"]), max_size=2),
        "exec": st.lists(_SOME_TEXT, min_size=1, max_size=3),
    },
)
_RULE = st.fixed_dictionaries(
    {},
    optional={
        "required": st.booleans(),
        "non_empty": st.booleans(),
        "pattern": st.sampled_from(["[0-9a-f]{32}", "sk-.+", ".*"]),
        "min_length": st.integers(0, 64),
    },
)
_SETTINGS = {
    "args": st.lists(_TEXT, max_size=4),
    "env": st.dictionaries(_VAR, _TEXT | _VAR.map(lambda v: f"${{{v}}}"), max_size=4),
    "cwd": _SOME_TEXT,
    "startup_timeout": _SECONDS,
    "stop_timeout": _SECONDS,
    "restart": st.sampled_from(["on-failure", "always", "never"]),
    "max_failures": _COUNT,
    "reset_after": _SECONDS,
    "cooldown_base": _SECONDS,
    "cooldown_max": _SECONDS,
    "health_interval": _SECONDS,
    "health_timeout": _SECONDS,
    "unhealthy_after": _COUNT,
    "restart_on_unhealthy": st.booleans(),
    "metrics_interval": _SECONDS,
    "alerts": st.dictionaries(_VAR, _ALERT, max_size=2),
    "env_file": st.lists(_SOME_TEXT, max_size=2),
    "inherit_env": st.booleans() | st.lists(_VAR, max_size=3),
    "required_env": st.lists(_VAR, max_size=3),
    "env_rules": st.dictionaries(_VAR, _RULE, max_size=2),
}


@st.composite
def _server(draw: st.DrawFn) -> dict[str, Any]:
    table: dict[str, Any] = draw(st.fixed_dictionaries({}, optional=_SETTINGS))
    if draw(st.booleans()):
        table["url"] = draw(st.from_regex(r"https?://[a-z0-9.]{1,12}(:[0-9]{2,5})?(/[a-z0-9/]{0,10})?", fullmatch=True))
    if "url" not in table or draw(st.booleans()):
        table["command"] = draw(_SOME_TEXT)
    if "url" not in table:
        readiness = draw(st.sampled_from(["mcp", "log", "alive"]))
        table["readiness"] = readiness
        if readiness == "log":
            table["ready_pattern"] = draw(st.sampled_from(["listening on", r"ready\b", "port [0-9]+"]))
        if readiness == "alive":
            table["ready_after"] = draw(_SECONDS)
    low, high = sorted(draw(st.lists(_SECONDS, min_size=2, max_size=2)))
    table["backoff_base"], table["backoff_max"] = low, high
    return table


_GATEWAY = st.fixed_dictionaries(
    {},
    optional={
        "listen": st.sampled_from(["127.0.0.1:8765", "127.0.0.1:9100", "localhost:80", "[::1]:8443"]),
        "allowed_origins": st.lists(st.sampled_from(["https://a.example", "http://localhost:3000"]), max_size=2),
        "metrics_public": st.booleans(),
        "auto_start": st.booleans(),
    },
) | st.just({"tls_cert": "certs/c.pem", "tls_key": "/etc/k.pem"})


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    """A config document with any of the top-level keys; each group names servers the document has."""
    doc: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {
                "servers": st.dictionaries(
                    st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True), _server(), min_size=1, max_size=4
                )
            },
            optional={
                "env_rules": st.dictionaries(_VAR, _RULE, max_size=2),
                "alerts": st.dictionaries(_VAR, _ALERT, max_size=2),
                "gateway": _GATEWAY,
                "project": st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True),
                "home": st.sampled_from(["state", "../state", "/var/lib/mcpctl", "~/.mcpctl"]),
            },
        )
    )
    names = sorted(doc["servers"])
    group = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,8}", fullmatch=True)
    groups = st.dictionaries(group, st.lists(st.sampled_from(names), min_size=1, max_size=3), max_size=2)
    for name, members in draw(groups).items():
        doc.setdefault("groups", {})[name] = {"servers": members}
    return doc


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_documents(), first=st.sampled_from(["toml", "json"]), second=st.sampled_from(["toml", "json"]))
def test_import_export_import_is_lossless(doc: dict[str, Any], first: str, second: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mc-rt-") as folder:
        base = Path(folder)
        target = base / "mcpctl.toml"
        original, problems = from_document(doc, target)
        assert problems == []
        assert original is not None
        source = base / f"source.{first}"
        source.write_text(dumps(doc, first))
        once = to_config(read(source, base).document, target)
        exported = base / f"export.{second}"
        exported.write_text(dumps(document(once), second))
        twice = to_config(read(exported, base).document, target)
        for config in (once, twice):
            assert dict(config.servers) == dict(original.servers)
            assert (config.env_rules, config.alerts) == (original.env_rules, original.alerts)
            assert (config.gateway, config.groups) == (original.gateway, original.groups)
            assert (config.project_key, config.home_key) == (original.project_key, original.home_key)
        assert document(twice) == document(once)


def test_a_server_imported_disabled_is_said_as_added_not_unchanged(env: Env) -> None:
    env.write_config({"t": {"command": "t"}})
    source = env.workdir / "in.json"
    source.write_text(json.dumps({"mcpServers": {"s": {"url": "https://h.example/sse"}, "n": {"command": "n"}}}))
    preview = env.run("config", "import", str(source), "--dry-run")
    assert "+ s (written with enabled = false: apply leaves it)" in preview.stdout
    assert "unchanged" not in preview.stdout
    report = env.json("config", "import", str(source))
    assert (report["unchanged"], report["disabled"]) == ([], ["s"])
    again = env.json("config", "import", str(source))
    assert (again["unchanged"], again["disabled"]) == (["s", "n"], [])


def _printing_server(out: Path, **env: str) -> dict[str, Any]:
    """A client entry whose server writes $A|$B|$C (as sh expands them) to `out`, then serves."""
    script = f'printf %s "$A|$B|$C" > {out}; exec {sys.executable} {FIXTURE} healthy'
    return {"command": "sh", "args": ["-c", script], "env": env}


def test_a_literal_dollar_in_a_client_file_reaches_the_server_as_written(env: Env, monkeypatch: Any) -> None:
    monkeypatch.setenv("FROM_SHELL", "shell-value")
    out = env.workdir / "seen.txt"
    entry = _printing_server(out, A="pa$$w0rd", B="cost $5", C="${env:FROM_SHELL}")
    source = env.workdir / "claude_desktop_config.json"
    source.write_text(json.dumps({"mcpServers": {"p": entry}}))
    assert env.run("-f", str(source), "start", "p").returncode == 0
    assert out.read_text() == "pa$$w0rd|cost $5|shell-value"
    env.run("-f", str(source), "stop", "p")
    out.unlink()
    assert imported(env, source)["p"]["env"] == {"A": "pa$$$$w0rd", "B": "cost $$5", "C": "${FROM_SHELL}"}
    assert env.run("start", "p").returncode == 0
    assert out.read_text() == "pa$$w0rd|cost $5|shell-value"
    exported = json.loads(env.run("config", "export", "--format", "json").stdout)
    assert exported["mcpServers"]["p"]["env"] == {"A": "pa$$w0rd", "B": "cost $5", "C": "${FROM_SHELL}"}


def test_import_keeps_the_comments_and_tables_it_does_not_change(env: Env) -> None:
    env.config.write_text(
        '# my servers\n\n[servers.keep]  # hand-written\ncommand = "keep"\n# why keep runs\n\n'
        '[servers.old]\ncommand = "old"\n\n[servers.gone]\ncommand = "gone"\n\n[alerts.cpu]  # global\n'
        'metric = "cpu_percent"\nthreshold = 90\n'
    )
    source = env.workdir / "in.json"
    source.write_text(json.dumps({"mcpServers": {"old": {"command": "new"}, "added": {"command": "a"}}}))
    servers = imported(env, source)
    text = env.config.read_text()
    assert text.startswith('# my servers\n\n[servers.keep]  # hand-written\ncommand = "keep"\n# why keep runs\n')
    assert "[alerts.cpu]  # global\n" in text
    assert (servers["old"], servers["added"], servers["gone"]) == (
        {"command": "new"},
        {"command": "a"},
        {"command": "gone"},
    )
    servers = imported(env, source, "--replace")
    assert set(servers) == {"old", "added"}
    assert env.config.read_text().startswith("# my servers\n\n# why keep runs\n\n[servers.old]")  # the comment: old's
    assert "[alerts.cpu]  # global\n" in env.config.read_text()
