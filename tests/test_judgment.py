"""Judgments that were wrong (issue 15): a shell's "not found", a made-up protocol version, a stale error,
each server's own "ready in", a port another process holds."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY, Env, tiny_server


def test_a_shell_wrappers_not_found_fails_at_once_without_retries(env: Env) -> None:
    env.write_config({"amap": {"command": "sh", "args": ["-c", "mcp-nonexistent-xyz"], "backoff_base": 0.1}})
    proc = env.run("start", "amap", "--json")
    assert proc.returncode == 4, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["error"]["type"] == "command_not_found"
    assert "127" in result["error"]["message"]
    assert "mcp-nonexistent-xyz" in result["error"]["message"]
    assert result["error"]["hint"]
    status = env.status("amap")
    assert status["state"] == "failed"
    assert status["consecutive_failures"] == 1  # no retries, no crash loop
    assert status["restarts"] == 0


@pytest.mark.parametrize("version", ['"1999-01-01"', "123", "null"])
def test_an_unknown_protocol_version_is_not_ready(env: Env, version: str) -> None:
    env.write_config({"odd": tiny_server(args=[str(TINY), "--protocol-version", version])})
    proc = env.run("start", "odd", "--json")
    assert proc.returncode == 4, proc.stdout
    error = json.loads(proc.stdout)["results"][0]["error"]
    assert error["type"] == "protocol_error"
    assert "protocolVersion" in error["message"]
    assert version in error["message"]
    assert "MCP version" in error["hint"]
    assert env.status("odd")["state"] == "failed"


def test_a_known_protocol_version_is_ready(env: Env) -> None:
    env.write_config({"old": tiny_server(args=[str(TINY), "--protocol-version", '"2024-11-05"'])})
    assert env.run("start", "old").returncode == 0
