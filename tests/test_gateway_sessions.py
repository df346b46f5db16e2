"""The gateway's HTTP sessions over real shims: notifications as their connection closes, idle expiry."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from tests.conftest import Env, alive, tiny_server, wait_for
from tests.gateway_helpers import configure, delete, get_stream, one_server, open_session, rpc, start_gateway, token

ROOTS_CHANGED = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
PING = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
CROWD = 8


async def _notify_as_the_connection_resets(env: Env, url: str, headers: dict[str, str]) -> list[int]:
    """POST notifications that the gateway reads in the same turn of its loop as the reset of the session's
    shim connection: their HTTP statuses. The gateway is stopped (SIGSTOP) while the shim dies with a line
    of ours unread (the kernel then resets our end) and the POSTs are written, then let go on."""
    import httpx2

    async with httpx2.AsyncClient(headers=headers, timeout=60) as client:
        assert "result" in (await client.post(url, json=PING)).json()  # the session's shim connection
        warm = await asyncio.gather(*(client.post(url, json=ROOTS_CHANGED) for _ in range(CROWD)))
        assert [answer.status_code for answer in warm] == [202] * CROWD  # and CROWD connections kept open
        shim = env.status("a")["shim_pid"]
        gateway = json.loads(env.run("gateway", "status", "--json").stdout)["gateway"]["pid"]
        os.kill(shim, signal.SIGSTOP)
        assert (await client.post(url, json=ROOTS_CHANGED)).status_code == 202  # waits in the shim's socket
        os.kill(gateway, signal.SIGSTOP)
        try:
            os.kill(shim, signal.SIGKILL)
            wait_for(lambda: not alive(shim))
            posted = [asyncio.create_task(client.post(url, json=ROOTS_CHANGED)) for _ in range(CROWD)]
            await asyncio.sleep(0.5)  # written to the stopped gateway's sockets
        finally:
            os.kill(gateway, signal.SIGCONT)
        statuses = [answer.status_code for answer in await asyncio.gather(*posted)]
        assert "result" in (await client.post(url, json=PING)).json()  # the session lives on, on a new shim
    return statuses


def test_a_notification_posted_as_the_shim_connection_resets_is_accepted(env: Env) -> None:
    url, bearer, session = one_server(env, "a", tiny_server())
    headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json, text/event-stream", **session}
    statuses = asyncio.run(_notify_as_the_connection_resets(env, url, headers))
    assert statuses == [202] * CROWD  # they were 500: the write met the reset before the reader closed
    assert "Traceback" not in (env.paths.gateway_dir / "gateway.log").read_text()


def test_a_session_unused_for_session_idle_timeout_ends_and_frees_its_place_at_the_shim(env: Env) -> None:
    base = configure(env, {"a": tiny_server(max_clients=2)}, gateway={"session_idle_timeout": 2})
    start_gateway(env)
    url, bearer = f"{base}/servers/a/mcp", token(env, "t")
    used, streaming = (open_session(url, bearer)[0] for _ in range(2))  # each takes one of a's 2 places
    assert used is not None
    assert streaming is not None
    stream = get_stream(url, bearer, streaming)  # a session with its GET stream open is not idle
    assert open_session(url, bearer)[1]["error"]["data"]["type"] == "too_many_clients"
    for _ in range(8):  # used for 4 s, past the timeout: idle is counted from the last request
        time.sleep(0.5)
        last = time.monotonic()
        assert rpc(url, bearer, used, "ping")[0] == 200
    assert open_session(url, bearer)[1]["error"]["data"]["type"] == "too_many_clients"  # not yet ended
    third = wait_for(lambda: open_session(url, bearer)[0], timeout=15, interval=0.2)  # its place, freed
    assert time.monotonic() - last >= 2.0
    status, answer = rpc(url, bearer, used, "ping")
    assert (status, answer["error"]["message"]) == (404, "no such session: initialize first")
    assert rpc(url, bearer, streaming, "ping")[0] == 200  # idle as long, with its stream open: kept
    assert rpc(url, bearer, third, "ping")[0] == 200
    assert delete(url, bearer, streaming) == 204
    stream.result(timeout=20)


@pytest.mark.parametrize("value", [0, -1, "1h", True])
def test_a_session_idle_timeout_that_is_not_a_positive_number_of_seconds_is_refused(env: Env, value: object) -> None:
    configure(env, {"a": tiny_server()}, gateway={"session_idle_timeout": value})
    for command in (("config", "validate"), ("gateway", "start")):
        proc = env.run(*command)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "gateway.session_idle_timeout: expected a positive number of seconds, got " in proc.stderr
    assert env.run("gateway", "status").returncode == 3
