"""Real third-party MCP servers (npm and PyPI, installed by .ci/run) through the real CLI: start, tools, call, stop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import Env, third_party_server

# Generous: node and a Python venv start cold on a loaded 2-core machine. Not a timed test.
BUDGET = 120.0


@contextmanager
def serving(env: Env, name: str, table: dict[str, Any], tool: str) -> Iterator[None]:
    """Start NAME, prove it ready and that it lists `tool`; after the body, stop it and prove nothing of it is left."""
    env.write_config({name: {"startup_timeout": BUDGET, **table}})
    started = env.run("start", name, timeout=BUDGET)
    assert started.returncode == 0, (started.stdout, started.stderr)
    assert env.status(name)["state"] == "ready"
    listed = env.json("tools", name, "--timeout", str(BUDGET))
    assert tool in {entry["name"] for entry in listed["tools"]}
    yield
    stopped = env.run("stop", name, timeout=BUDGET)
    assert stopped.returncode == 0, (stopped.stdout, stopped.stderr)
    assert env.status(name)["state"] == "stopped"
    assert env.our_processes() == []


def call(env: Env, name: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    # Exit 0 (env.json checks it) already says the tool reported no error; node servers leave isError out.
    result: dict[str, Any] = env.json("call", name, tool, "--args", json.dumps(arguments), "--timeout", str(BUDGET))
    assert not result["result"].get("isError"), result
    return result["result"]


def text_of(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result["content"] if block["type"] == "text")


def test_server_everything_echoes(env: Env) -> None:
    with serving(env, "everything", third_party_server("server-everything"), "echo"):
        assert text_of(call(env, "everything", "echo", {"message": "hello from mcpctl"})) == "Echo: hello from mcpctl"


def test_server_filesystem_lists_its_directory(env: Env, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("kept\n")
    (tmp_path / "sub").mkdir()
    with serving(env, "filesystem", third_party_server("server-filesystem", str(tmp_path)), "list_directory"):
        listing = text_of(call(env, "filesystem", "list_directory", {"path": str(tmp_path)})).splitlines()
        assert sorted(listing) == ["[DIR] sub", "[FILE] notes.txt"]


def test_server_memory_keeps_what_it_was_told(env: Env, tmp_path: Path) -> None:
    # The server's default store is a file beside its own code, in the shared cache: give it one of the test's.
    table = third_party_server("server-memory", env={"MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")})
    entity = {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}
    with serving(env, "memory", table, "create_entities"):
        call(env, "memory", "create_entities", {"entities": [entity]})
        graph = json.loads(text_of(call(env, "memory", "read_graph", {})))
        assert graph["entities"] == [entity]
    assert "Ada" in (tmp_path / "memory.jsonl").read_text()


def test_mcp_server_time_tells_utc(env: Env) -> None:
    with serving(env, "time", third_party_server("mcp-server-time"), "get_current_time"):
        now = call(env, "time", "get_current_time", {"timezone": "UTC"})["structuredContent"]
        assert now["timezone"] == "UTC"
        assert now["datetime"].endswith("+00:00")
        assert now["is_dst"] is False
