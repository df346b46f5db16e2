"""The gateway's HTTP sessions over real shims: notifications as their connection closes, idle expiry."""

from __future__ import annotations

import asyncio
import json
import os
import signal

from tests.conftest import Env, alive, tiny_server, wait_for
from tests.gateway_helpers import one_server

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
