"""Each client's own state on the shared session, with the SDK's client through `mcpctl connect` and a
server that tells what its one session was asked (tests/fixtures/resourceful.py): subscriptions and log
levels stay per client, and a client that leaves takes its own away."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import stdio_client

from tests.conftest import Env
from tests.test_shared_session import text_of, through_connect

BUDGET = 90.0
RESOURCEFUL = Path(__file__).parent / "fixtures" / "resourceful.py"
URI = "res://shared/a"
# The clients here speak the 2025 protocol, where subscribe and setLevel are current; the SDK warns of 2026.
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


def resourceful(*args: str, **settings: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(RESOURCEFUL), *args], **settings}


@dataclass
class Client:
    session: ClientSession
    updates: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    async def call(self, tool: str, **arguments: Any) -> str:
        return text_of(await self.session.call_tool(tool, arguments, read_timeout_seconds=30))

    async def seen(self) -> list[list[Any]]:
        return json.loads(await self.call("seen"))  # type: ignore[no-any-return]


@asynccontextmanager
async def client(env: Env, name: str = "res") -> AsyncIterator[Client]:
    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            made.updates.append(str(message.params.uri))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        made.logs.append(params.level)

    async with (
        stdio_client(through_connect(env, name)) as (read, write),
        ClientSession(read, write, message_handler=on_message, logging_callback=on_log) as session,
    ):
        made = Client(session)
        await session.initialize()
        yield made


def run(use: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        with anyio.fail_after(BUDGET):
            await use()

    anyio.run(main)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    while not await check():
        await anyio.sleep(0.1)


def test_subscriptions_are_per_client_and_end_upstream_with_the_last_subscriber(env: Env) -> None:
    env.write_config({"res": resourceful()})

    async def use() -> None:
        async with AsyncExitStack() as stack:
            a, b, c = [await stack.enter_async_context(client(env)) for _ in range(3)]
            await a.session.subscribe_resource(URI)
            await b.session.subscribe_resource(URI)
            await b.session.unsubscribe_resource(URI)  # b's own: a stays subscribed
            await a.call("touch", uri=URI)
            for each in (a, b, c):
                await each.call("touch", uri="res://nobody")  # a round trip: what was sent before has arrived
            assert (a.updates, b.updates, c.updates) == ([URI], [], [])
            assert await c.seen() == [["subscribe", URI]]  # once, for two subscribers; b's unsubscribe stayed here
        async with client(env) as fresh:  # every client above has left

            async def unsubscribed() -> bool:
                return ["unsubscribe", URI] in await fresh.seen()

            await until(unsubscribed)
            await fresh.call("touch", uri=URI)
            await fresh.call("touch", uri="res://nobody")
            assert fresh.updates == []  # nothing of the clients that left

    run(use)


def test_each_client_gets_the_log_level_it_asked_for(env: Env) -> None:
    env.write_config({"res": resourceful()})

    async def use() -> None:
        async with client(env) as quiet, client(env) as unset:
            await quiet.session.set_logging_level("error")
            async with client(env) as verbose:
                await verbose.session.set_logging_level("debug")
                for level in ("debug", "warning", "error"):
                    await unset.call("log", level=level, text=level)
                for each in (quiet, unset, verbose):
                    await each.call("touch", uri="res://nobody")
                assert quiet.logs == ["error"]
                assert verbose.logs == unset.logs == ["debug", "warning", "error"]
            # verbose left: the server's level goes back to the most verbose one still asked for

            async def retuned() -> bool:
                return (await quiet.seen())[-1] == ["setLevel", "error"]

            await until(retuned)
            assert [entry for entry in await quiet.seen() if entry[0] == "setLevel"] == [
                ["setLevel", "error"],
                ["setLevel", "debug"],
                ["setLevel", "error"],
            ]

    run(use)
