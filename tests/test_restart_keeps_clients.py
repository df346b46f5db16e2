"""A restart keeps the clients: the SDK's own client, through `mcpctl connect`, stays on one stdio session while
the server is restarted in place (`restart`, `apply`), or the shim itself is replaced (stop, then start)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import psutil
import pytest
from mcp import MCPError, types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcpctl.events import read_events
from tests.conftest import TINY, Env, alive, fixture_server, settle, third_party_server, tiny_server

# Generous: SDK servers take ~0.6 s to start, node ones more, on a loaded 2-core machine. Not a timed test.
BUDGET = 120.0
LIST_CHANGED = "notifications/tools/list_changed"


class Client:
    """An SDK client session through `mcpctl connect NAME`, and the notifications it received."""

    def __init__(self, env: Env, session: ClientSession, notes: list[str]) -> None:
        self.env, self.session, self.notes = env, session, notes

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI while the session stays open (in a thread: the session's tasks keep running)."""
        return await anyio.to_thread.run_sync(lambda: self.env.run(*args, timeout=BUDGET))

    async def pid(self) -> int:
        return int(_text(await self.session.call_tool("pid", {})))

    async def notified(self, method: str = LIST_CHANGED) -> None:
        with anyio.fail_after(30):
            while method not in self.notes:
                await anyio.sleep(0.05)


def _text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def through_connect(env: Env, name: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpctl", "-f", str(env.config), "connect", name],
        env={"MCPCTL_HOME": str(env.home), "NO_COLOR": "1"},
        cwd=str(env.workdir),
    )


def with_client(env: Env, name: str, use: Callable[[Client], Awaitable[Any]]) -> Any:
    notes: list[str] = []

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
        if method:
            notes.append(str(method))

    async def main() -> Any:
        with anyio.fail_after(BUDGET * 2):
            async with (
                stdio_client(through_connect(env, name)) as (read, write),
                ClientSession(read, write, message_handler=on_message) as session,
            ):
                await session.initialize()
                return await use(Client(env, session, notes))

    return anyio.run(main)


def _start(world: Env, **settings: Any) -> None:
    world.write_config({"demo": fixture_server("healthy", startup_timeout=BUDGET, **settings)})
    started = world.run("start", "demo", timeout=BUDGET)
    assert started.returncode == 0, started.stderr


def test_restart_keeps_the_session_and_tells_the_client_to_refetch(env: Env) -> None:
    _start(env)
    shim = env.status("demo")["shim_pid"]

    async def use(client: Client) -> tuple[int, int, str, subprocess.CompletedProcess[str]]:
        before = await client.pid()
        restarted = await client.cli("restart", "demo", "--json")
        await client.notified()
        after = await client.pid()
        echoed = _text(await client.session.call_tool("echo", {"text": "still here"}))
        return before, after, echoed, restarted

    before, after, echoed, restarted = with_client(env, "demo", use)
    assert restarted.returncode == 0, restarted.stderr
    assert '"outcome": "started"' in restarted.stdout
    assert after != before
    assert not alive(before)
    assert echoed == "still here"
    status = env.status("demo")
    assert (status["shim_pid"], status["pid"], status["state"]) == (shim, after, "ready")
    kinds = [event["event"] for event in read_events(env.paths.events_file("demo"))]
    assert kinds[-3:] == ["restart", "started", "ready"]


def test_restart_prints_ready_in_as_before(env: Env) -> None:
    _start(env)
    restarted = env.run("restart", "demo", timeout=BUDGET)
    assert restarted.returncode == 0, restarted.stderr
    assert "ready in" in restarted.stdout
    assert env.status("demo")["restarts"] == 0  # a person's restart is not one of the policy's


def test_apply_restarts_in_place_with_the_new_env(env: Env) -> None:
    _start(env, env={"FLAVOUR": "vanilla"})

    async def use(client: Client) -> tuple[int, int, subprocess.CompletedProcess[str]]:
        before = await client.pid()
        env.write_config({"demo": fixture_server("healthy", startup_timeout=BUDGET, env={"FLAVOUR": "mint"})})
        applied = await client.cli("apply")
        await client.notified()
        return before, await client.pid(), applied

    before, after, applied = with_client(env, "demo", use)
    assert applied.returncode == 0, applied.stderr
    assert "restarted, ready in" in applied.stdout
    assert after != before
    assert psutil.Process(after).environ()["FLAVOUR"] == "mint"


def test_server_everything_restarted_under_its_client(env: Env) -> None:
    env.write_config({"everything": {**third_party_server("server-everything"), "startup_timeout": BUDGET}})

    async def use(client: Client) -> tuple[str, subprocess.CompletedProcess[str], int, int]:
        before = env.status("everything")["pid"]
        restarted = await client.cli("restart", "everything")
        await client.notified()
        echoed = _text(await client.session.call_tool("echo", {"message": "again"}))
        return echoed, restarted, before, env.status("everything")["pid"]

    echoed, restarted, before, after = with_client(env, "everything", use)
    assert restarted.returncode == 0, restarted.stderr
    assert echoed == "Echo: again"
    assert after != before


@pytest.mark.parametrize("by", ["name", "project/name"])
def test_stop_then_start_the_client_keeps_its_session(env: Env, by: str) -> None:
    """Also through `connect PROJECT/NAME`, what `client setup` writes: a person's stop is kept."""
    _start(env)

    async def use(client: Client) -> tuple[int, int, str]:
        before = await client.pid()
        assert (await client.cli("stop", "demo")).returncode == 0
        with pytest.raises(MCPError) as refused:  # stopped: the bridge says so (after holding it a while)
            await client.session.call_tool("echo", {"text": "anyone?"})
        assert (await client.cli("start", "demo")).returncode == 0
        await client.notified()
        return before, await client.pid(), str(refused.value)

    before, after, refused = with_client(env, "demo" if by == "name" else f"{env.workdir.name}/demo", use)
    assert after != before
    assert "demo is not running" in refused


def test_a_killed_shim_is_replaced_and_the_client_goes_on(env: Env) -> None:
    _start(env)
    shim = env.status("demo")["shim_pid"]

    async def use(client: Client) -> tuple[int, int]:
        before = await client.pid()
        psutil.Process(shim).kill()
        await client.notified()  # the bridge started a new shim, as on a first connect
        return before, await client.pid()

    before, after = with_client(env, "demo", use)
    assert after != before
    assert env.status("demo")["shim_pid"] != shim


def test_a_request_in_flight_during_a_restart_gets_a_retryable_error(env: Env) -> None:
    _start(env)

    async def use(client: Client) -> tuple[MCPError, str]:
        caught: list[MCPError] = []

        async def slow() -> None:
            try:
                await client.session.call_tool("slow", {"seconds": 30, "steps": 1})
            except MCPError as exc:
                caught.append(exc)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(slow)
            await anyio.sleep(1.0)
            assert (await client.cli("restart", "demo")).returncode == 0
        return caught[0], _text(await client.session.call_tool("echo", {"text": "next"}))

    error, echoed = with_client(env, "demo", use)
    assert error.error.data is not None, (str(error), error.error)
    assert error.error.data["retryable"] is True
    assert "restarted" in str(error)
    assert echoed == "next"


def test_clients_connecting_during_a_restart_get_in(env: Env) -> None:
    env.write_config({"demo": tiny_server(startup_timeout=BUDGET)})
    assert env.run("start", "demo").returncode == 0
    for _ in range(3):
        restart = subprocess.Popen(
            [sys.executable, "-m", "mcpctl", "restart", "demo"], cwd=env.workdir, stdout=subprocess.DEVNULL
        )
        time.sleep(0.25)  # the CLI is on its way: the shim is stopping or starting the server meanwhile
        answers = _raw_session(env, [INITIALIZE, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}], until=2)
        assert restart.wait(timeout=BUDGET) == 0
        assert [answer.get("id") for answer in answers if "id" in answer] == [1, 2]
        assert "tools" in answers[-1]["result"]
    settle(env, "demo", lambda status: status["state"] == "ready")
    assert len(env.running(TINY)) == 1


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}


def _raw_session(env: Env, requests: list[dict[str, Any]], until: int) -> list[dict[str, Any]]:
    """Send `requests` through `mcpctl connect --no-start`; what came back, up to the answer to id `until`."""
    proc = _raw_client(env)
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
    proc.stdin.flush()
    answers: list[dict[str, Any]] = []
    while not answers or answers[-1].get("id") != until:
        line = proc.stdout.readline()
        assert line, f"connect ended after {answers}"
        answers.append(json.loads(line))
    proc.stdin.close()
    assert proc.wait(timeout=BUDGET) == 0
    proc.stdout.close()
    return answers


def _raw_client(env: Env) -> subprocess.Popen[bytes]:
    """`mcpctl connect demo --no-start` with pipes for a raw JSON-RPC client."""
    return subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "connect", "demo", "--no-start"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=env.workdir,
    )


def test_what_a_request_in_flight_gets_when_the_shim_goes_away(env: Env) -> None:
    """Through `mcpctl connect`, a raw JSON-RPC client: a request in flight when a person stops the server
    gets the stopping shim's `not_running` (not retryable: nothing says it will run again), the session
    goes on once it is started; one in flight when the shim dies gets a retryable `connection_lost`."""
    env.write_config({"demo": {**tiny_server(stop_timeout=1), "args": [str(TINY), "--stop-reading"]}})
    assert env.run("start", "demo").returncode == 0
    client = _raw_client(env)
    assert client.stdin is not None
    assert client.stdout is not None

    def ask(request_id: int, method: str, **params: Any) -> None:
        assert client.stdin is not None
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        client.stdin.write(json.dumps(request).encode() + b"\n")
        client.stdin.flush()

    def answer(request_id: int) -> dict[str, Any]:
        while True:
            line = client.stdout.readline() if client.stdout is not None else b""
            assert line, "connect ended"
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == request_id:
                return message

    try:
        ask(1, "initialize", protocolVersion="2025-11-25", capabilities={}, clientInfo={"name": "raw", "version": "1"})
        assert "result" in answer(1)
        client.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        ask(2, "stall")  # the server never answers it
        time.sleep(0.5)
        assert env.run("stop", "demo").returncode == 0
        stopped = answer(2)["error"]["data"]
        assert (stopped["type"], stopped["retryable"]) == ("not_running", False)
        assert env.run("start", "demo").returncode == 0
        ask(3, "ping")
        assert answer(3) == {"jsonrpc": "2.0", "id": 3, "result": {}}  # the same stdio session, a new shim
        ask(4, "stall")
        time.sleep(0.5)
        psutil.Process(env.status("demo")["shim_pid"]).kill()
        lost = answer(4)["error"]["data"]
        assert (lost["type"], lost["retryable"]) == ("connection_lost", True)
    finally:
        client.kill()
        client.wait()
        client.stdin.close()
        client.stdout.close()
