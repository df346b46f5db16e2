"""Each client's own variables, as its documentation defines them, mean with `-f FILE` and in `config import` and
`client setup` what the client means by them: Cursor's (VS Code's) `${workspaceFolderBasename}` and `${/}`,
Gemini CLI's `$NAME` (real CLI runs, the servers real processes)."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import TINY, Env


def _file(path: Path, server: dict[str, Any]) -> Path:
    """A client's file at `path` with one server, s: tests/fixtures/tiny.py, given `server`'s args and env."""
    path.parent.mkdir(parents=True)
    table = {**server, "command": sys.executable, "args": [str(TINY), *server.get("args", [])]}
    path.write_text(json.dumps({"mcpServers": {"s": table}}))
    return path


def _started(env: Env, path: Path) -> psutil.Process:
    """The server `-f path start s` runs."""
    started = env.run("-f", str(path), "start", "s")
    assert started.returncode == 0, started.stderr
    return psutil.Process(env.json("-f", str(path), "status", "s")["servers"][0]["pid"])


def _imported(env: Env, path: Path) -> dict[str, Any]:
    proc = env.run("config", "import", str(path))
    assert proc.returncode == 0, proc.stderr
    servers: dict[str, Any] = tomllib.loads(env.config.read_text())["servers"]
    return servers["s"]


def test_cursors_workspace_basename_and_separator(env: Env) -> None:
    workspace = env.workdir / "my$proj"
    args = ["${workspaceFolder}${/}data", "${workspaceFolderBasename}"]
    vars_ = {"SEP": "${/}", "LONG_SEP": "${pathSeparator}", "BASE": "${workspaceFolderBasename}"}
    path = _file(workspace / ".cursor" / "mcp.json", {"args": args, "env": vars_})
    process = _started(env, path)
    assert process.cmdline()[-2:] == [f"{workspace}{os.sep}data", "my$proj"]
    seen = process.environ()
    assert (seen["SEP"], seen["LONG_SEP"], seen["BASE"]) == (os.sep, os.sep, "my$proj")
    table = _imported(env, path)
    assert table["args"][1:] == [f"{str(workspace).replace('$', '$$')}{os.sep}data", "my$$proj"]
    assert table["env"] == {"SEP": os.sep, "LONG_SEP": os.sep, "BASE": "my$$proj"}


def test_geminis_dollar_name_is_the_variable(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_KEY", "k-1")
    monkeypatch.delenv("GEMINI_UNSET", raising=False)
    vars_ = {"KEY": "$GEMINI_KEY", "BOTH": "${GEMINI_KEY}/$GEMINI_KEY", "PRICE": "costs $5"}
    path = _file(env.workdir / "p" / ".gemini" / "settings.json", {"args": ["$GEMINI_KEY"], "env": vars_})
    process = _started(env, path)
    assert process.cmdline()[-1] == "k-1"
    seen = process.environ()
    assert (seen["KEY"], seen["BOTH"], seen["PRICE"]) == ("k-1", "k-1/k-1", "costs $5")
    table = _imported(env, path)
    assert table["env"] == {"KEY": "${GEMINI_KEY}", "BOTH": "${GEMINI_KEY}/${GEMINI_KEY}", "PRICE": "costs $$5"}
    assert table["args"][1:] == ["${GEMINI_KEY}"]
    unset = _file(env.workdir / "q" / ".gemini" / "settings.json", {"env": {"K": "$GEMINI_UNSET"}})
    refused = env.run("-f", str(unset), "start", "s")
    assert refused.returncode == 7, refused.stderr
    assert "GEMINI_UNSET" in refused.stderr


def test_dollar_name_is_literal_text_to_the_other_clients(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_KEY", "k-1")
    path = _file(env.workdir / "p" / ".cursor" / "mcp.json", {"env": {"KEY": "$GEMINI_KEY"}})
    assert _started(env, path).environ()["KEY"] == "$GEMINI_KEY"
    assert _imported(env, path)["env"] == {"KEY": "$$GEMINI_KEY"}


def test_client_setup_gemini_imports_dollar_name_as_a_reference(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    home = env.workdir.parent / "u"
    _file(home / ".gemini" / "settings.json", {"env": {"KEY": "$GEMINI_KEY"}})
    monkeypatch.setenv("HOME", str(home))
    proc = env.run("-f", str(env.config), "client", "setup", "gemini")
    assert proc.returncode == 0, proc.stderr
    assert tomllib.loads(env.config.read_text())["servers"]["s"]["env"] == {"KEY": "${GEMINI_KEY}"}
