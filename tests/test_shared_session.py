"""The shared session with a real third-party server and the SDK's own client, through `mcpctl connect`:
what a client can do directly it can do through mcpctl; a server that cannot start says why to the client."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from mcp import MCPError, types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcpctl.constants import ExitCode
from tests.conftest import Env, fixture_server, third_party_server, tiny_server

# Generous: node starts cold on a loaded 2-core machine. Not a timed test.
BUDGET = 120.0
ROOT = "file:///workspace/of/the/sdk/client"


async def sample(_context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content
    text = asked.text if isinstance(asked, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled: {text}"), model="fake-llm"
    )


async def elicit(_context: Any, _params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="decline")


async def list_roots(_context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri=ROOT, name="sdk")])


Use = Callable[[ClientSession], Awaitable[Any]]


def with_session(params: StdioServerParameters, use: Use) -> Any:
    """Run `use` on an SDK client session that declares sampling, elicitation and roots."""

    async def main() -> Any:
        with anyio.fail_after(BUDGET):
            async with (
                stdio_client(params) as (read, write),
                ClientSession(
                    read, write, sampling_callback=sample, elicitation_callback=elicit, list_roots_callback=list_roots
                ) as session,
            ):
                await session.initialize()
                return await use(session)

    return anyio.run(main)


def through_connect(env: Env, name: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpctl", "-f", str(env.config), "connect", name],
        env={"MCPCTL_HOME": str(env.home), "NO_COLOR": "1"},
        cwd=str(env.workdir),
    )


async def tool_names(session: ClientSession) -> list[str]:
    return sorted(tool.name for tool in (await session.list_tools()).tools)


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def test_server_everything_offers_the_same_tools_through_connect_as_directly(env: Env) -> None:
    table = third_party_server("server-everything")
    direct = with_session(StdioServerParameters(command=table["command"], args=table["args"]), tool_names)
    env.write_config({"everything": {**table, "startup_timeout": BUDGET}})
    shared = with_session(through_connect(env, "everything"), tool_names)
    assert shared == direct
    assert {"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"} <= set(shared)


def test_sampling_elicitation_and_roots_reach_the_client_through_connect(env: Env) -> None:
    env.write_config({"everything": {**third_party_server("server-everything"), "startup_timeout": BUDGET}})

    async def use(session: ClientSession) -> tuple[str, str, str]:
        sampled = await session.call_tool("trigger-sampling-request", {"prompt": "hello"})
        elicited = await session.call_tool("trigger-elicitation-request", {})
        # The client's joining told the server its roots changed; the server fetches them in the background.
        roots = ""
        for _ in range(100):
            roots = text_of(await session.call_tool("get-roots-list", {}))
            if ROOT in roots:
                break
            await anyio.sleep(0.1)
        return text_of(sampled), text_of(elicited), roots

    sampled, elicited, roots = with_session(through_connect(env, "everything"), use)
    assert "sampled: Resource trigger-sampling-request context: hello" in sampled
    assert '"model": "fake-llm"' in sampled
    assert "User declined to provide the requested information." in elicited
    assert ROOT in roots


# -- a server that cannot start ----------------------------------------------------------------------


@pytest.fixture
def failing(env: Env) -> str:
    env.write_config({"broken": fixture_server("needs-env")})
    return "broken"


def test_the_sdk_client_hears_why_the_server_did_not_start(env: Env, failing: str) -> None:
    async def main() -> MCPError:
        with anyio.fail_after(BUDGET):
            async with (
                stdio_client(through_connect(env, failing)) as (read, write),
                ClientSession(read, write) as session,
            ):
                with pytest.raises(MCPError) as caught:
                    await session.initialize()
                return caught.value

    refused = anyio.run(main)
    assert str(refused).startswith("broken exited during startup (exit code 1)")
    assert refused.error.data["type"] == "exited_during_startup"


def test_connect_answers_the_first_request_with_one_error_line_and_exits_as_before(env: Env, failing: str) -> None:
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}
    proc = subprocess.run(
        [sys.executable, "-m", "mcpctl", "connect", failing],
        input=json.dumps(initialize) + "\n",
        capture_output=True,
        text=True,
        cwd=env.workdir,
        timeout=BUDGET,
        check=False,
    )
    assert proc.returncode == ExitCode.START_FAILED, proc.stderr
    (line,) = proc.stdout.splitlines()
    answer = json.loads(line)
    assert (answer["jsonrpc"], answer["id"]) == ("2.0", 0)
    assert answer["error"]["message"].startswith("broken exited during startup")
    assert answer["error"]["data"]["type"] == "exited_during_startup"
    assert answer["error"]["data"]["hint"].startswith("see its stderr")
    assert "retryable" in answer["error"]["data"]
    assert "broken exited during startup" in proc.stderr


def test_connect_with_no_request_coming_just_exits(env: Env, failing: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcpctl", "connect", failing],
        input="",
        capture_output=True,
        text=True,
        cwd=env.workdir,
        timeout=BUDGET,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (ExitCode.START_FAILED, "")


def test_control_methods_sent_through_connect_are_refused(env: Env) -> None:
    """An MCP client (or a server's prompt acting through one) cannot stop or reconfigure the shim."""
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    before = env.status("demo")
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "mcpctl/stop"},
        {"jsonrpc": "2.0", "id": 2, "method": "mcpctl/update", "params": {"settings": {"restart": "never"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "mcpctl", "connect", "demo", "--no-start", "--drain"],  # a pipe: wait for answers
        input="".join(json.dumps(r) + "\n" for r in requests),
        capture_output=True,
        text=True,
        cwd=env.workdir,
        timeout=BUDGET,
        check=False,
    )
    answers = {a["id"]: a for a in map(json.loads, proc.stdout.splitlines())}
    assert answers[1]["error"]["code"] == answers[2]["error"]["code"] == -32601
    assert "control method" in answers[1]["error"]["message"]
    assert "tools" in answers[3]["result"]  # MCP itself still flows
    after = env.status("demo")
    assert (after["state"], after["pid"], after["shim_pid"]) == ("ready", before["pid"], before["shim_pid"])
    assert env.run("stop", "demo").returncode == 0  # the CLI's own channel still works
