"""`mcpctl client list|setup|restore|status` on a fake HOME holding each client's config file in the format its
documentation gives (JSONC with comments for VS Code, TOML for Codex, ~/.claude.json with unrelated keys), and
real MCP clients launched exactly from the entries setup wrote."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcpctl.config import jsonc
from mcpctl.state import state_lock
from tests.conftest import FIXTURE, Env, wait_for

HEADERS_SERVER = Path(__file__).parent / "fixtures" / "http_headers.py"

PY, SRV = json.dumps(sys.executable), json.dumps(str(FIXTURE))

VSCODE = f"""{{
  // 💡 Inputs are prompted on first server start, then stored securely by VS Code.
  "inputs": [
    {{
      "type": "promptString",
      "id": "perplexity-key",
      "description": "Perplexity API Key",
      "password": true,
    }},
  ],
  "servers": {{
    /* the fixture server, in place of the docs' npx one */
    "demo": {{
      "type": "stdio",
      "command": {PY},
      "args": [{SRV}, "healthy"],
      "env": {{ "PERPLEXITY_API_KEY": "${{input:perplexity-key}}" }}, // a trailing comma VS Code accepts
    }},
  }},
}}
"""

CODEX = f"""# ~/.codex/config.toml
model = "o3"
approval_policy = "on-request"   # keep asking

# MCP servers (https://github.com/openai/codex/blob/main/docs/config.md#mcp_servers)
[mcp_servers.docs]
command = {PY}
args = [{SRV}, "healthy"]
env = {{ "API_KEY" = "value-1234" }}
startup_timeout_sec = 20

# profiles come after the servers
[profiles.fast]
model = "gpt-4o"
"""

DESKTOP = {"mcpServers": {"filesystem": {"command": sys.executable, "args": [str(FIXTURE), "healthy"]}}}
GEMINI = {
    "theme": "GitHub",
    "mcpServers": {
        "pythonTools": {"command": sys.executable, "args": [str(FIXTURE), "healthy"], "timeout": 15000},
        "sseServer": {"url": "http://localhost:8080/sse"},
    },
}
WINDSURF = {"mcpServers": {"github": {"command": sys.executable, "args": [str(FIXTURE), "healthy"], "env": {}}}}
# Cursor's docs show plain JSON; Cursor itself accepts a trailing comma, as here.
CURSOR = f"""{{
  "mcpServers": {{
    "server-name": {{
      "command": {PY},
      "args": [{SRV}, "healthy"],
    }}
  }}
}}
"""


def _claude_code(project: Path) -> dict[str, object]:
    entry = {"type": "stdio", "command": sys.executable, "args": [str(FIXTURE), "healthy"], "env": {}}
    return {
        "numStartups": 42,
        "installMethod": "npm",
        "autoUpdates": True,
        "tipsHistory": {"memory-command": 3},
        "mcpServers": {"demo": entry},
        "projects": {
            str(project): {"allowedTools": [], "mcpServers": {"local": entry}, "hasTrustDialogAccepted": True}
        },
        "oauthAccount": {"emailAddress": "me@example.com"},
    }


@pytest.fixture
def home(env: Env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake HOME with one real-format config file for each of the seven clients."""
    root = env.workdir.parent / "u"
    files = {
        ".config/Claude/claude_desktop_config.json": json.dumps(DESKTOP, indent=2),
        ".claude.json": json.dumps(_claude_code(env.workdir), indent=2),
        ".cursor/mcp.json": CURSOR,
        ".config/Code/User/mcp.json": VSCODE,
        ".codeium/windsurf/mcp_config.json": json.dumps(WINDSURF, indent=4),
        ".codex/config.toml": CODEX,
        ".gemini/settings.json": json.dumps(GEMINI, indent=2),
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / ".config"))
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` but mcpctl's own cache (~/.cache/mcpctl: compiled methods and parsed
    configs, written by any command where bytecode may be written, as __pycache__ is)."""
    cache = root / ".cache" / "mcpctl"
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and cache not in p.parents}


def _tools(entry: dict[str, object], **shell: str) -> list[str]:
    """The tools an SDK stdio client lists when launched exactly from `entry` in a bare environment (plus
    `shell`), cwd /."""
    params = StdioServerParameters(
        command=str(entry["command"]),
        args=[str(a) for a in entry["args"]],  # type: ignore[attr-defined]
        env={"PATH": "/usr/bin:/bin", **shell, **dict(entry.get("env") or {})},  # type: ignore[call-overload]
        cwd="/",
    )

    async def use() -> list[str]:
        with open("/dev/null", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return [tool.name for tool in (await session.list_tools()).tools]

    return anyio.run(use)


def test_client_list_finds_all_seven(env: Env, home: Path) -> None:
    listed = {c["id"]: c for c in env.json("client", "list")["clients"]}
    assert set(listed) == {"claude-desktop", "claude-code", "cursor", "vscode", "windsurf", "codex", "gemini"}
    assert all(c["found"] for c in listed.values()), listed
    servers = {cid: c["servers"] for cid, c in listed.items()}
    assert servers == {
        "claude-desktop": 1, "claude-code": 2, "cursor": 1, "vscode": 1, "windsurf": 1, "codex": 1, "gemini": 2,
    }  # fmt: skip
    assert all(c["through_mcpctl"] == 0 for c in listed.values())
    table = env.run("client", "list").stdout
    assert "~/.codex/config.toml" in table
    assert "not found here" not in table


def test_setup_dry_run_changes_no_byte(env: Env, home: Path) -> None:
    before = _snapshot(home)
    for client in ("claude-desktop", "claude-code", "cursor", "vscode", "windsurf", "codex", "gemini"):
        proc = env.run("-f", str(env.config), "client", "setup", client, "--dry-run")
        assert proc.returncode == 0, proc.stderr
        assert "connect" in proc.stdout
        assert "dry run: nothing was written" in proc.stderr
    assert "value-1234" not in env.run("-f", str(env.config), "client", "setup", "codex", "--dry-run").stdout
    assert _snapshot(home) == before
    assert not env.config.exists()
    assert not (env.home / "clients").exists()


def test_vscode_setup_keeps_comments_and_the_entry_runs_from_a_bare_environment(env: Env, home: Path) -> None:
    path = home / ".config/Code/User/mcp.json"
    original = path.read_bytes()
    path.chmod(0o640)
    proc = env.run("-f", str(env.config), "client", "setup", "vscode")
    assert proc.returncode == 0, proc.stderr
    text = path.read_text()
    assert text.startswith("{\n  // 💡 Inputs are prompted on first server start")
    assert '"password": true,\n    },\n  ],' in text  # the inputs and their trailing commas, as they were
    assert "/* the fixture server, in place of the docs' npx one */" in text
    entry = jsonc.loads(text)["servers"]["demo"]
    assert entry["type"] == "stdio"
    assert entry["args"][-2:] == ["connect", "w/demo"]
    assert Path(entry["command"]).is_absolute()
    assert "--home" in entry["args"]
    assert path.stat().st_mode & 0o777 == 0o640
    imported = tomllib.loads(env.config.read_text())["servers"]["demo"]
    assert imported["env"] == {"PERPLEXITY_API_KEY": "${PERPLEXITY_KEY}"}
    backups = list((env.home / "clients" / "backups" / "vscode").glob("*/1-*")) + list(
        (env.home / "clients" / "backups" / "vscode").glob("*/0-*")
    )
    assert [b.read_bytes() for b in backups] == [original]
    assert "set PERPLEXITY_KEY" in proc.stderr  # the ${input:...} is read from the environment
    assert "echo" in _tools(entry, PERPLEXITY_KEY="pk-1")
    assert env.json("client", "status", "vscode")["entries"][0]["state"] == "mcpctl"
    restored = env.run("client", "restore", "vscode")
    assert restored.returncode == 0, restored.stderr
    assert path.read_bytes() == original


def test_claude_code_setup_keeps_unrelated_keys_and_per_project_entries(env: Env, home: Path) -> None:
    path = home / ".claude.json"
    before = json.loads(path.read_text())
    proc = env.run("-f", str(env.config), "client", "setup", "claude-code")
    assert proc.returncode == 0, proc.stderr
    after = json.loads(path.read_text())
    assert list(after) == list(before)
    assert {k: v for k, v in after.items() if k not in ("mcpServers", "projects")} == {
        k: v for k, v in before.items() if k not in ("mcpServers", "projects")
    }
    project = after["projects"][str(env.workdir)]
    assert project["allowedTools"] == []
    assert project["hasTrustDialogAccepted"] is True
    assert project["mcpServers"]["local"]["args"][-2:] == ["connect", "w/local"]
    assert after["mcpServers"]["demo"]["args"][-2:] == ["connect", "w/demo"]
    assert set(tomllib.loads(env.config.read_text())["servers"]) == {"demo", "local"}
    assert "echo" in _tools(project["mcpServers"]["local"])


def test_codex_setup_rewrites_its_table_and_keeps_comments(env: Env, home: Path) -> None:
    path = home / ".codex/config.toml"
    proc = env.run("-f", str(env.config), "client", "setup", "codex")
    assert proc.returncode == 0, proc.stderr
    text = path.read_text()
    assert text.startswith('# ~/.codex/config.toml\nmodel = "o3"\napproval_policy = "on-request"   # keep asking\n')
    assert text.endswith('# profiles come after the servers\n[profiles.fast]\nmodel = "gpt-4o"\n')
    entry = tomllib.loads(text)["mcp_servers"]["docs"]
    assert entry["startup_timeout_sec"] == 20
    assert entry["args"][-2:] == ["connect", "w/docs"]
    assert "value-1234" not in text
    assert tomllib.loads(env.config.read_text())["servers"]["docs"]["env"] == {"API_KEY": "value-1234"}
    assert "echo" in _tools(entry)


def test_gemini_sse_server_is_imported_disabled_and_left_alone(env: Env, home: Path) -> None:
    proc = env.run("-f", str(env.config), "client", "setup", "gemini")
    assert proc.returncode == 0, proc.stderr
    assert "sseServer" in proc.stderr
    assert "SSE-only" in proc.stderr
    settings = json.loads((home / ".gemini/settings.json").read_text())
    assert settings["mcpServers"]["sseServer"] == GEMINI["mcpServers"]["sseServer"]  # type: ignore[index]
    assert settings["mcpServers"]["pythonTools"]["timeout"] == 15000  # the client's own key kept
    servers = tomllib.loads(env.config.read_text())["servers"]
    assert servers["sseServer"]["enabled"] is False
    assert env.run("list", "--names").stdout.split() == ["pythonTools"]
    assert "disabled" in env.run("start", "sseServer").stderr


def test_a_file_changed_while_setup_waits_to_write_is_left_alone(env: Env, home: Path) -> None:
    path = home / ".cursor/mcp.json"
    paths = env.paths
    paths.ensure_config()
    with state_lock(paths.config_lock, 10):
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcpctl", "-f", str(env.config), "client", "setup", "cursor"],
            cwd=env.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("--- ")  # the diff is out: setup has read the file
        path.write_text(path.read_text().replace('"healthy"', '"crash"'))
        edited = path.read_bytes()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 12, err
    assert "changed while mcpctl was about to write it" in err
    assert path.read_bytes() == edited
    assert not env.config.exists()


def test_drift_after_a_hand_edit_is_shown(env: Env, home: Path) -> None:
    assert env.run("-f", str(env.config), "client", "setup", "windsurf").returncode == 0
    path = home / ".codeium/windsurf/mcp_config.json"
    data = json.loads(path.read_text())
    data["mcpServers"]["github"]["args"].append("--verbose")
    path.write_text(json.dumps(data))
    entries = env.json("client", "status", "windsurf")["entries"]
    assert [(e["name"], e["state"]) for e in entries] == [("github", "drift")]
    assert env.run("client", "restore", "windsurf", "--list").stdout.count("mcp_config.json") == 1


def test_unknown_client_and_server_are_one_line_errors(env: Env, home: Path) -> None:
    proc = env.run("client", "setup", "notepad")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == "error: unknown client 'notepad'"
    proc = env.run("-f", str(env.config), "client", "setup", "cursor", "--servers", "nope")
    assert proc.returncode == 2
    assert "Cursor has no server 'nope'" in proc.stderr
    assert env.run("client", "restore", "cursor").returncode == 2


def test_a_url_server_gets_its_headers_on_every_request(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Imported from a client's file with `headers` (a ${env:...} token), then started and called through mcpctl."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    record = env.workdir / "headers.jsonl"
    source = env.workdir / "remote.json"
    remote = {
        "url": f"http://127.0.0.1:{port}/mcp",
        "headers": {"Authorization": "Bearer ${env:REMOTE_TOKEN}", "X-Team": "core"},
    }
    source.write_text(json.dumps({"mcpServers": {"remote": remote}}))
    assert env.run("config", "import", str(source)).returncode == 0
    server = subprocess.Popen(
        [sys.executable, str(HEADERS_SERVER)],
        env={**os.environ, "FIXTURE_PORT": str(port), "HEADERS_FILE": str(record)},
    )
    try:
        monkeypatch.setenv("REMOTE_TOKEN", "tok-5678-secret")
        wait_for(lambda: _listening(port), timeout=20)
        started = env.run("start", "remote")
        assert started.returncode == 0, started.stderr
        assert (
            env.run("call", "remote", "whoami", "--unmasked").stdout == "Bearer tok-5678-secret\n"
        )  # masked by default
        monkeypatch.delenv("REMOTE_TOKEN")  # masked still: the header its shim sends, not what this shell has
        assert env.run("call", "remote", "whoami").stdout == "***\n"
    finally:
        server.kill()
        server.wait()
    seen = [json.loads(line) for line in record.read_text().splitlines()]
    assert {"initialize", "notifications/initialized", "tools/call"} <= {s["method"] for s in seen}
    assert all(s["headers"].get("Authorization") == "Bearer tok-5678-secret" for s in seen)
    assert all(s["headers"].get("X-Team") == "core" for s in seen)
    assert "tok-5678-secret" not in env.run("config", "diff", "--json").stdout
    assert "tok-5678-secret" not in env.run("list", "--json").stdout


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_disabled_entry_is_left_with_a_note(env: Env, home: Path) -> None:
    project = env.workdir / ".cursor/mcp.json"
    project.parent.mkdir()
    entries = {"a": DESKTOP["mcpServers"]["filesystem"], "off": {"command": "node", "args": ["x.js"], "disabled": True}}
    project.write_text(json.dumps({"mcpServers": entries}))
    proc = env.run("-f", str(env.config), "client", "setup", "cursor")
    assert proc.returncode == 0, proc.stderr
    assert "disabled in the source file" not in proc.stderr  # one note for it, not two
    assert "note: off (" in proc.stderr
    written = json.loads(project.read_text())["mcpServers"]
    assert written["off"] == entries["off"]
    assert written["a"]["args"][-2:] == ["connect", "w/a"]
    assert "off" not in tomllib.loads(env.config.read_text())["servers"]


def test_a_windsurf_server_url_ending_in_sse_is_left_alone(env: Env, home: Path) -> None:
    path = home / ".codeium/windsurf/mcp_config.json"
    path.write_text(json.dumps({"mcpServers": {"remote": {"serverUrl": "https://example.com/sse"}}}))
    proc = env.run("-f", str(env.config), "client", "setup", "windsurf")
    assert proc.returncode == 0, proc.stderr
    assert "SSE-only" in proc.stderr
    assert json.loads(path.read_text())["mcpServers"]["remote"] == {"serverUrl": "https://example.com/sse"}
    assert tomllib.loads(env.config.read_text())["servers"]["remote"]["enabled"] is False


def test_setup_json_says_what_it_did_when_nothing_changes_and_when_no_file_is_found(env: Env, home: Path) -> None:
    assert env.run("-f", str(env.config), "client", "setup", "windsurf").returncode == 0
    again = env.json("-f", str(env.config), "client", "setup", "windsurf")
    assert (again["found"], again["rewritten"], again["diff"]) == (True, [], "")
    assert [x["reason"] for x in again["left"]] == ["already runs through mcpctl"]
    (home / ".codeium/windsurf/mcp_config.json").unlink()
    proc = env.run("-f", str(env.config), "client", "setup", "windsurf")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Windsurf: no config file found (looked for ~/.codeium/windsurf/mcp_config.json)\n"
    assert env.json("-f", str(env.config), "client", "setup", "windsurf")["found"] is False


def test_setup_of_a_client_with_no_file_on_a_clean_home_writes_nothing(env: Env, home: Path) -> None:
    """No client file and no mcpctl config yet: setup says so and makes no config of one comment line (which
    then passed for a config with no servers)."""
    (home / ".cursor/mcp.json").unlink()
    user_config = Path(os.environ["XDG_CONFIG_HOME"]) / "mcpctl" / "mcpctl.toml"
    assert not user_config.exists()
    proc = env.run("client", "setup", "cursor")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Cursor: no config file found (looked for ")
    assert "now run mcpctl connect" not in proc.stderr
    assert not user_config.exists()
    assert env.json("client", "setup", "cursor")["found"] is False
    assert not user_config.exists()


def test_the_first_setup_locks_and_records_in_the_project_of_the_config_it_writes(env: Env, home: Path) -> None:
    """No mcpctl config anywhere: setup writes the user's (project `mcpctl`), and took its config lock and wrote its
    history in the project the working directory would name (`w`), which no config is of."""
    user_config = Path(os.environ["XDG_CONFIG_HOME"]) / "mcpctl" / "mcpctl.toml"
    assert not env.config.exists()
    assert not user_config.exists()
    proc = env.run("client", "setup", "cursor")
    assert proc.returncode == 0, proc.stderr
    assert user_config.is_file()
    assert sorted(p.name for p in (env.home / "projects").iterdir()) == ["mcpctl"]
    assert (env.home / "projects" / "mcpctl" / "config" / "lock").exists()


def test_a_crlf_file_keeps_its_line_endings(env: Env, home: Path) -> None:
    path = home / ".cursor/mcp.json"
    path.write_bytes(CURSOR.replace("\n", "\r\n").encode())
    assert env.run("-f", str(env.config), "client", "setup", "cursor").returncode == 0
    data = path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") > 5
    codex = home / ".codex/config.toml"
    codex.write_bytes(CODEX.replace("\n", "\r\n").encode())
    assert env.run("-f", str(env.config), "client", "setup", "codex").returncode == 0
    data = codex.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") > 5


def test_a_symlinked_client_file_stays_a_link_through_setup_and_restore(env: Env, home: Path) -> None:
    link = home / ".cursor/mcp.json"
    target = home / "dotfiles/cursor.json"
    target.parent.mkdir()
    link.rename(target)
    link.symlink_to(target)
    original = target.read_bytes()
    assert env.run("-f", str(env.config), "client", "setup", "cursor").returncode == 0
    assert link.is_symlink()
    assert link.resolve() == target
    assert "connect" in target.read_text()
    assert env.run("client", "restore", "cursor").returncode == 0
    assert link.is_symlink()
    assert link.resolve() == target
    assert target.read_bytes() == original


def test_setup_diff_masks_every_env_and_header_value_of_the_config_and_the_files(env: Env, home: Path) -> None:
    api = '[servers.api]\nurl = "http://h:9/mcp"\nheaders = { X-Key = "inline-secret-value", X-Team = "core" }\n'
    db = '[servers.db]\ncommand = "db"\n\n[servers.db.env]\nDB_PASSWORD = "hunter2-very-secret"\nPIN = "4711"\n'
    entry = {**DESKTOP["mcpServers"]["filesystem"], "env": {"TOKEN": "client-secret-1", "SHORT": "ab"}}
    (home / ".cursor/mcp.json").write_text(json.dumps({"mcpServers": {"n1": entry}}, indent=2))
    for config, shown in ((api + "\n" + db, "DB_PASSWORD"), (db + "\n" + api, "X-Team")):
        env.config.write_text(config)  # the last table is the diff's context
        text = env.run("-f", str(env.config), "client", "setup", "cursor", "--dry-run").stdout
        as_json = json.dumps(env.json("-f", str(env.config), "client", "setup", "cursor", "--dry-run"))
        for output in (text, as_json):
            assert shown in output
            assert "connect" in output
            for secret in ("hunter2-very-secret", "4711", "inline-secret-value", "core", "client-secret-1", '"ab"'):
                assert secret not in output


def _run_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run in another folder than the test's own (a second project)."""
    command = [sys.executable, "-m", "mcpctl", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)


def test_same_named_servers_with_other_settings_are_kept_apart(env: Env, home: Path) -> None:
    env.config.write_text('[servers.keep]\ncommand = "mine"\n')
    (home / ".config/Code/User/mcp.json").unlink()
    for project, root in (("p1", "/one"), ("p2", "/two"), ("p3", "/one")):
        path = env.workdir / project / ".vscode/mcp.json"
        path.parent.mkdir(parents=True)
        servers = {"fs": {"command": "fs", "args": [root]}, "keep": {"command": "theirs"}}
        path.write_text(json.dumps({"servers": servers}))
    for project in ("p1", "p2"):
        proc = _run_in(env.workdir / project, "-f", str(env.config), "client", "setup", "vscode")
        assert proc.returncode == 0, proc.stderr
    assert "imported as 'fs-2'" in proc.stderr
    assert "imported as 'keep-3'" in proc.stderr
    servers = tomllib.loads(env.config.read_text())["servers"]
    assert servers["keep"] == {"command": "mine"}
    assert (servers["fs"]["args"], servers["fs-2"]["args"]) == (["/one"], ["/two"])
    p2 = jsonc.loads((env.workdir / "p2/.vscode/mcp.json").read_text())["servers"]
    assert p2["fs"]["args"][-1] == "w/fs-2"
    assert p2["keep"]["args"][-1] == "w/keep-3"


def test_a_project_server_runs_in_its_project_folder(env: Env, home: Path) -> None:
    project = env.workdir / "proj"
    project.mkdir()
    (project / "srv.py").write_bytes(FIXTURE.read_bytes())
    (project / "sdk_server.py").write_bytes((FIXTURE.parent / "sdk_server.py").read_bytes())  # srv.py imports it
    entry = {"command": sys.executable, "args": ["./srv.py", "healthy"]}
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"rel": entry}}))
    proc = _run_in(project, "-f", str(env.config), "client", "setup", "claude-code")
    assert proc.returncode == 0, proc.stderr
    servers = tomllib.loads(env.config.read_text())["servers"]
    assert servers["rel"]["cwd"] == str(project)
    assert servers["local"]["cwd"] == str(env.workdir)  # ~/.claude.json's projects[PATH] entry
    assert "demo" not in servers or "cwd" not in servers["demo"]  # a user entry: no project
    started = env.run("start", "rel")
    assert started.returncode == 0, started.stderr
    assert "echo" in _tools(json.loads((project / ".mcp.json").read_text())["mcpServers"]["rel"])


def test_status_reads_the_files_setup_wrote_in_other_projects(env: Env, home: Path) -> None:
    for project in ("p1", "p2"):
        path = env.workdir / project / ".cursor/mcp.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"mcpServers": {project: DESKTOP["mcpServers"]["filesystem"]}}))
        assert _run_in(path.parent.parent, "-f", str(env.config), "client", "setup", "cursor").returncode == 0
    proc = _run_in(env.workdir / "p2", "client", "status", "cursor", "--json")
    states = {e["name"]: e["state"] for e in json.loads(proc.stdout)["entries"]}
    assert states == {"server-name": "mcpctl", "p1": "mcpctl", "p2": "mcpctl"}
    (env.workdir / "p1/.cursor/mcp.json").unlink()
    proc = _run_in(env.workdir / "p2", "client", "status", "cursor", "--json")
    assert {e["name"]: e["state"] for e in json.loads(proc.stdout)["entries"]}["p1"] == "gone"


def test_a_bare_reference_is_a_variable_only_to_the_clients_that_read_it_so(env: Env, home: Path) -> None:
    entry = {"command": "srv", "env": {"KEY": "${API_KEY}", "PASS": "pa$$w0rd"}}
    (home / ".config/Claude/claude_desktop_config.json").write_text(json.dumps({"mcpServers": {"d": entry}}))
    (env.workdir / ".mcp.json").write_text(json.dumps({"mcpServers": {"c": entry}}))
    for client in ("claude-desktop", "claude-code"):
        assert env.run("-f", str(env.config), "client", "setup", client).returncode == 0
    servers = tomllib.loads(env.config.read_text())["servers"]
    assert servers["d"]["env"] == {"KEY": "$${API_KEY}", "PASS": "pa$$$$w0rd"}  # Claude Desktop: no variables
    assert servers["c"]["env"] == {"KEY": "${API_KEY}", "PASS": "pa$$$$w0rd"}  # Claude Code: ${VAR} is one
