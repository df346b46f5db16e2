"""Both protocol eras through the shim: four servers (dual-era SDK, modern-only, legacy that exits on
server/discover, server-everything) and the SDK's Client in its three modes, through `mcpctl connect`.

The servers are started once for the module (their own state dir), and shared by every case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import tomli_w
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcpctl.paths import Paths
from tests.conftest import TINY, Env, _end_what_is_left, fixture_server, third_party_server, wait_for

MODERN_FIXTURE = Path(__file__).parent / "fixtures" / "modern.py"
MODERN, LEGACY = "2026-07-28", "2025-11-25"
# name -> (its era, the echo tool's argument)
SERVERS = {"sdk": ("modern", "text"), "modern": ("modern", "text"), "exits": ("legacy", "text")}
SERVERS["everything"] = ("legacy", "message")
MODES = ("legacy", "auto", MODERN)


@dataclass(frozen=True)
class World:
    home: Path
    config: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MCPCTL_HOME": str(self.home)}
        command = [sys.executable, "-m", "mcpctl", "-f", str(self.config), *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)

    def status(self) -> dict[str, dict[str, Any]]:
        proc = self.cli("status", "--json")
        return {s["name"]: s for s in json.loads(proc.stdout)["servers"]}

    def client(self, name: str, mode: str, **options: Any) -> Client:
        args = ["-m", "mcpctl", "-f", str(self.config), "connect", name]
        params = StdioServerParameters(command=sys.executable, args=args, env={"MCPCTL_HOME": str(self.home)})
        return Client(params, mode=mode, **options)  # type: ignore[arg-type]


def _tables() -> dict[str, dict[str, Any]]:
    health = {"health_interval": 2.0, "health_timeout": 5.0}
    tables = {
        "sdk": fixture_server("healthy", **health),
        "modern": {"command": sys.executable, "args": [str(MODERN_FIXTURE)], **health},
        "exits": {"command": sys.executable, "args": [str(TINY), "--exit-on-discover"], **health},
    }
    tables["everything"] = third_party_server("server-everything", **health)
    return tables


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="mc-era-", dir="/tmp"))
    (root / "w").mkdir()
    config = root / "w" / "mcpctl.toml"
    config.write_text(tomli_w.dumps({"servers": _tables()}))
    made = World(root / "h", config)
    started = made.cli("start", "--all", "--json")
    try:
        assert started.returncode == 0, (started.stdout, started.stderr)
        yield made
    finally:
        _end_what_is_left(Env(made.home, config.parent))  # every process of this module's state dir
        shutil.rmtree(root, ignore_errors=True)


def test_start_is_ready_for_all_four_each_in_its_era(world: World) -> None:
    status = world.status()
    for name, (era, _) in SERVERS.items():
        assert status[name]["state"] == "ready", status[name]
        assert status[name]["protocol_era"] == era, status[name]
        assert status[name]["protocol_version"] == (MODERN if era == "modern" else LEGACY)
    log = Paths(world.home, "w").log_file("exits").read_text()  # the project is the config's directory, w
    assert "exited on the server/discover probe: spawning it once more, pinned to the legacy era" in log
    assert psutil.pid_exists(status["exits"]["pid"])  # the record names the process spawned again
    text = world.cli("status").stdout
    assert "PROTOCOL" in text
    assert MODERN in text
    assert LEGACY in text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(SERVERS))
def test_every_client_mode_lists_and_calls_tools_of_every_server(world: World, name: str, mode: str) -> None:
    era, argument = SERVERS[name]

    async def session() -> tuple[str, list[str], str]:
        async with world.client(name, mode) as client:
            tools = await client.list_tools()
            called = await client.call_tool("echo", {argument: "across eras"})
            return client.session.protocol_version, [t.name for t in tools.tools], str(called.content[0])

    version, tools, text = anyio.run(session)
    assert "echo" in tools
    assert "across eras" in text
    # auto takes the newest era the server speaks; a pinned client gets its own era, translated
    expected = {"legacy": LEGACY, "auto": MODERN if era == "modern" else LEGACY, MODERN: MODERN}[mode]
    assert version == expected


def test_a_modern_clients_input_required_flow_reaches_it_through_the_shim(world: World) -> None:
    from mcp import types

    async def roots(_context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/era-root")])  # type: ignore[arg-type]

    async def modern() -> str:
        async with world.client("modern", MODERN, list_roots_callback=roots) as client:
            return str((await client.call_tool("ask", {})).content[0])

    async def legacy() -> None:
        async with world.client("modern", "legacy", list_roots_callback=roots) as client:
            await client.call_tool("ask", {})

    assert "roots: file:///tmp/era-root (state asked)" in anyio.run(modern)
    with pytest.raises(BaseException) as caught:  # noqa: PT011 - an MCPError inside anyio's exception groups
        anyio.run(legacy)
    error = _mcp_error(caught.value)
    assert error.code == -32050, error
    assert "input_required" in error.message, error


def _mcp_error(exc: BaseException) -> MCPError:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, MCPError), repr(exc)
    return exc


@pytest.mark.parametrize("name", ["modern", "exits"])
def test_progress_and_list_changed_reach_the_right_clients_in_both_eras(world: World, name: str) -> None:
    """A legacy and a modern client share one server: progress goes to the caller only, list_changed to
    both (the legacy one as a notification, the modern one on its listen stream)."""
    heard: list[str] = []

    async def on_message(message: Any) -> None:
        heard.append(str(getattr(getattr(message, "root", message), "method", "")))

    async def both() -> tuple[list[float], bool]:
        progress: list[float] = []

        async def on_progress(done: float, _total: float | None, _message: str | None) -> None:
            progress.append(done)

        async with world.client(name, "legacy", message_handler=on_message) as old, world.client(name, MODERN) as new:
            async with new.listen(tools_list_changed=True) as events:
                await new.call_tool("slow", {"steps": 2}, progress_callback=on_progress)
                await old.call_tool("changed", {})
                with anyio.fail_after(20):
                    event = await events.__anext__()
                with anyio.fail_after(20):
                    while "notifications/tools/list_changed" not in heard:
                        await anyio.sleep(0.05)
            return progress, type(event).__name__ == "ToolsListChanged"

    progress, changed = anyio.run(both)
    assert progress == [1, 2]
    assert changed
    assert "notifications/progress" not in heard  # the legacy client did not ask for it


def test_health_stays_ok_for_all_four_for_30s(world: World) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(2)
        for name, server in world.status().items():
            assert server["state"] == "ready", (name, server)
            health = server["health"]
            assert health is None or health["ok"], (name, health)
    for name, server in world.status().items():
        assert server["health"]["ok"], (name, server)
        assert server["health"]["consecutive_failures"] == 0, (name, server)
        assert time.time() - server["health"]["checked_at"] < 10, (name, server)
        assert server["restarts"] == 0, (name, server)


def test_protocol_legacy_pins_a_dual_era_server_to_initialize(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", protocol="legacy")})
    assert env.run("start", "demo").returncode == 0
    status = env.status("demo")
    assert (status["protocol_era"], status["protocol_version"]) == ("legacy", LEGACY)
    ping = env.run("ping", "demo")
    assert ping.returncode == 0, ping.stderr


@pytest.mark.parametrize("mode", MODES)
def test_the_http_relay_serves_every_client_mode(env: Env, mode: str) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    table = {**fixture_server("http"), "url": f"http://127.0.0.1:{port}/mcp", "env": {"FIXTURE_PORT": str(port)}}
    env.write_config({"web": table})
    assert env.run("start", "web").returncode == 0
    assert env.status("web")["protocol_era"] == "legacy"  # url servers are handshaken with initialize
    world = World(env.home, env.config)

    async def session() -> tuple[str, str]:
        async with world.client("web", mode) as client:
            called = await client.call_tool("echo", {"text": "over http"})
            return client.session.protocol_version, str(called.content[0])

    version, text = anyio.run(session)
    assert "over http" in text
    assert version == (MODERN if mode == MODERN else LEGACY)


def test_a_crash_loop_spawns_each_run_once_after_the_probe_is_cleared(env: Env) -> None:
    """The first run that exits before answering the probe is spawned again, pinned to legacy; when that
    dies too, the probe was not the cause, and each later run of the loop is one process, not two."""
    crashes = {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"], "restart": "on-failure"}
    env.write_config({"crashy": {**crashes, "backoff_base": 0.01, "backoff_max": 0.01, "max_failures": 5}})
    assert env.run("start", "crashy").returncode == 4
    wait_for(lambda: env.status("crashy")["state"] == "failed", timeout=60)
    record = env.status("crashy")
    assert record["total_failures"] == 5
    log = Paths(env.home, env.workdir.name).log_file("crashy").read_text()
    assert log.count("] spawning ") == 5 + 1, log
    assert log.count("pinned to the legacy era") == 1, log
