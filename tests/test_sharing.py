"""How a server's processes are shared: `share = "per-client"` (a process of its own for each client) and
`max_concurrency` (requests in flight at once), with real processes and the SDK client through `mcpctl connect`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp import MCPError
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from tests.conftest import Env, alive, fixture_server, third_party_server, tiny_server, wait_for
from tests.test_multiplexer import Raw
from tests.test_shared_session import text_of, through_connect

BUDGET = 120.0  # generous: every client's process imports the SDK on a loaded 2-core machine


async def open_session(env: Env, name: str, stack: AsyncExitStack) -> ClientSession:
    read, write = await stack.enter_async_context(stdio_client(through_connect(env, name)))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    return session


async def pid_of(session: ClientSession) -> int:
    return int(text_of(await session.call_tool("pid", {})))


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    async def bounded() -> Any:
        with anyio.fail_after(BUDGET):
            return await main()

    return anyio.run(bounded)


def per_client(env: Env) -> int | None:
    return env.status("pc")["per_client"]  # type: ignore[no-any-return]


def test_per_client_gives_each_client_its_own_process_and_ends_it_with_its_client(env: Env) -> None:
    env.write_config({"pc": fixture_server("healthy", share="per-client")})
    env.run("start", "pc")
    probe = env.status("pc")["pid"]

    async def main() -> None:
        async with AsyncExitStack() as stack_b:
            b = await open_session(env, "pc", stack_b)
            async with AsyncExitStack() as stack_a:
                a = await open_session(env, "pc", stack_a)
                pid_a, pid_b = await pid_of(a), await pid_of(b)
                assert len({pid_a, pid_b, probe}) == 3
                status = await anyio.to_thread.run_sync(lambda: env.status("pc"))
                assert status["per_client"] == 2
                assert status["state"] == "ready"
                shim = psutil.Process(status["shim_pid"])
                assert {pid_a, pid_b} <= {child.pid for child in shim.children()}  # the kernel agrees
                table = await anyio.to_thread.run_sync(lambda: env.run("status").stdout)
                assert "per-client: 2 running" in table
            # client a left: its process goes, b's stays and serves
            await anyio.to_thread.run_sync(lambda: wait_for(lambda: not alive(pid_a), timeout=30))
            assert await pid_of(b) == pid_b
            assert await anyio.to_thread.run_sync(lambda: per_client(env)) == 1
        await anyio.to_thread.run_sync(lambda: wait_for(lambda: not alive(pid_b), timeout=30))

    run(main)
    assert alive(probe)
    assert per_client(env) == 0
    env.run("stop", "pc")
    assert not alive(probe)


def test_a_clients_process_that_ends_with_its_client_is_logged_as_that_not_as_the_server_exiting(env: Env) -> None:
    """A client's own process that exits 0 once its client left was logged "server exited: exit code 0",
    as if the server the shim supervises had ended; the log says whose process it was and why it ended."""
    env.write_config({"pc": tiny_server(share="per-client")})
    assert env.run("start", "pc").returncode == 0
    client = Raw(env, "pc")
    client.send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}}})
    assert "result" in client.answer(1)
    status = env.status("pc")
    shim, probe = psutil.Process(status["shim_pid"]), status["pid"]
    (pid,) = wait_for(lambda: [child.pid for child in shim.children() if child.pid != probe])
    client.close()
    log = env.paths.logs / "pc.log"
    ended = f"client 1: its server process {pid} ended (exit code 0): its client disconnected"
    wait_for(lambda: ended in log.read_text(), timeout=30)
    env.run("stop", "pc")
    text = log.read_text()
    assert text.count("server exited: exit code 0") == 1  # the shim's own run, at the stop
    assert text.index(ended) < text.index("server exited: exit code 0")


def test_a_crash_of_one_clients_process_leaves_the_other_client_working(env: Env) -> None:
    env.write_config({"pc": fixture_server("healthy", share="per-client")})
    env.run("start", "pc")

    async def main() -> None:
        async with AsyncExitStack() as stack:
            a, b = await open_session(env, "pc", stack), await open_session(env, "pc", stack)
            pid_a, pid_b = await pid_of(a), await pid_of(b)
            with pytest.raises(MCPError) as lost:
                await a.call_tool("crash", {})
            assert "connection" in str(lost.value).lower()
            await anyio.to_thread.run_sync(lambda: wait_for(lambda: not alive(pid_a), timeout=30))
            assert await pid_of(b) == pid_b
            assert text_of(await b.call_tool("echo", {"text": "still here"})) == "still here"

    run(main)
    assert env.status("pc")["state"] == "ready"


def test_stop_ends_every_clients_process(env: Env) -> None:
    env.write_config({"pc": fixture_server("healthy", share="per-client")})
    env.run("start", "pc")

    async def main() -> list[int]:
        async with AsyncExitStack() as stack:
            sessions = [await open_session(env, "pc", stack) for _ in range(2)]
            pids = [await pid_of(session) for session in sessions]
            await anyio.to_thread.run_sync(lambda: env.run("stop", "pc"))
            return pids

    pids = run(main)
    assert not any(alive(pid) for pid in pids)


def test_tools_call_and_ping_each_get_a_process_of_their_own(env: Env) -> None:
    """The CLI's clients ask `server/discover` before anything: a per-client shim answers it as a legacy
    server does, and their `initialize` spawns their process (they used to wait out --timeout unanswered)."""
    env.write_config({"pc": fixture_server("healthy", share="per-client")})
    env.run("start", "pc")
    probe = env.status("pc")["pid"]
    assert "pid" in {tool["name"] for tool in env.json("tools", "pc")["tools"]}
    called = env.run("call", "pc", "pid")
    assert called.returncode == 0, called.stderr
    pid = int(called.stdout)
    assert pid != probe
    ping = env.run("ping", "pc")
    assert ping.returncode == 0, ping.stderr
    assert "pong" in ping.stdout
    wait_for(lambda: not alive(pid), timeout=30)  # its client left
    assert alive(probe)


def test_tools_call_and_ping_reach_a_modern_server_shared_per_client(env: Env) -> None:
    """mcp-server-time speaks the 2026-07-28 era to the shim's probe; each CLI client's own process is
    spoken to in the legacy era its `initialize` opens."""
    env.write_config({"pc": third_party_server("mcp-server-time", share="per-client")})
    env.run("start", "pc")
    names = {tool["name"] for tool in env.json("tools", "pc")["tools"]}
    assert "get_current_time" in names
    called = env.json("call", "pc", "get_current_time", "timezone=UTC")
    assert "UTC" in json.dumps(called["result"])
    ping = env.run("ping", "pc")
    assert ping.returncode == 0, ping.stderr


def overlap_through(env: Env, name: str, clients: int, calls: int) -> int:
    """`calls` overlap calls from each of `clients` clients, all at once; the most the server saw inside at once."""

    async def main() -> int:
        most = 0

        async def call(session: ClientSession) -> None:
            nonlocal most
            most = max(most, int(text_of(await session.call_tool("overlap", {"seconds": 0.3}))))

        async with AsyncExitStack() as stack:
            sessions = [await open_session(env, name, stack) for _ in range(clients)]
            async with anyio.create_task_group() as group:
                for session in sessions:
                    for _ in range(calls):
                        group.start_soon(call, session)
        return most

    return int(run(main))


def test_max_concurrency_one_lets_one_request_in_at_a_time(env: Env) -> None:
    env.write_config({"one": fixture_server("healthy", max_concurrency=1), "any": fixture_server("healthy")})
    env.run("start", "one", "any")
    assert overlap_through(env, "one", clients=3, calls=2) == 1
    assert overlap_through(env, "any", clients=3, calls=2) > 1  # the fixture does overlap when let


def test_server_memory_keeps_every_parallel_write_with_max_concurrency_one(env: Env, tmp_path: Path) -> None:
    memory = tmp_path / "memory.jsonl"
    table = third_party_server("server-memory", env={"MEMORY_FILE_PATH": str(memory)}, max_concurrency=1)
    env.write_config({"memory": table})
    env.run("start", "memory")
    clients, writes = 3, 5

    async def main() -> set[str]:
        async def create(session: ClientSession, name: str) -> None:
            entity = {"name": name, "entityType": "test", "observations": [f"written by {name}"]}
            await session.call_tool("create_entities", {"entities": [entity]})

        async with AsyncExitStack() as stack:
            sessions = [await open_session(env, "memory", stack) for _ in range(clients)]
            async with anyio.create_task_group() as group:
                for c, session in enumerate(sessions):
                    for w in range(writes):
                        group.start_soon(create, session, f"entity-{c}-{w}")
            graph = json.loads(text_of(await sessions[0].call_tool("read_graph", {})))
            return {entity["name"] for entity in graph["entities"]}

    expected = {f"entity-{c}-{w}" for c in range(clients) for w in range(writes)}
    assert run(main) == expected
    on_disk = {json.loads(line)["name"] for line in memory.read_text().splitlines() if line.strip()}
    assert on_disk == expected


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"share": "sometimes"}, "share"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"share": "per-client", "readiness": "alive"}, "share"),
    ],
)
def test_bad_sharing_settings_are_one_line_naming_the_field(env: Env, settings: dict[str, Any], field: str) -> None:
    env.write_config({"bad": fixture_server("healthy", **settings)})
    result = env.run("start", "bad")
    assert result.returncode == 2
    assert f"servers.bad.{field}:" in result.stderr.splitlines()[0]
    assert "Traceback" not in result.stderr
