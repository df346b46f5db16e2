"""An mcpctl.toml written with CRLF line endings (an editor on Windows) keeps them through the edits `client setup`
and `config import` make in place: every line they add or replace ends as the file's others do (real CLI runs)."""

from __future__ import annotations

import json
import re
import sys
import tomllib

import pytest

from tests.conftest import TINY, Env


def _crlf_only(data: bytes) -> bool:
    return b"\r\n" in data and re.search(rb"(?<!\r)\n", data) is None


def test_client_setup_and_config_import_keep_a_crlf_config_crlf(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["# my servers", "[servers.t]", f"command = {json.dumps(sys.executable)}"]
    lines.append(f"args = [{json.dumps(str(TINY))}]")
    env.config.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    home = env.workdir.parent / "u"
    (home / ".cursor").mkdir(parents=True)
    (home / ".cursor" / "mcp.json").write_text(json.dumps({"mcpServers": {"c": {"command": "echo", "args": ["x"]}}}))
    monkeypatch.setenv("HOME", str(home))
    setup = env.run("-f", str(env.config), "client", "setup", "cursor")
    assert setup.returncode == 0, setup.stderr
    assert _crlf_only(env.config.read_bytes()), env.config.read_bytes()
    source = env.workdir / "more.json"  # one server changed in place, one added
    changed = {"command": sys.executable, "args": [str(TINY)], "env": {"A": "1"}}
    source.write_text(json.dumps({"mcpServers": {"t": changed, "d": {"command": "echo"}}}))
    imported = env.run("config", "import", str(source))
    assert imported.returncode == 0, imported.stderr
    data = env.config.read_bytes()
    assert _crlf_only(data), data
    assert data.startswith(b"# my servers\r\n")
    assert set(tomllib.loads(data.decode())["servers"]) == {"t", "c", "d"}
    started = env.run("start", "t")
    assert started.returncode == 0, started.stderr
