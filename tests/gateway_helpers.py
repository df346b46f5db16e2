"""Helpers of the gateway tests: a config with a [gateway] on a free port, tokens, the SDK's HTTP client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import tomli_w

from tests.conftest import Env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(env: Env, servers: dict[str, Any], **document: Any) -> str:
    """Write mcpctl.toml with a [gateway] on a free loopback port; the gateway's base URL."""
    port = free_port()
    gateway = {"listen": f"127.0.0.1:{port}", **document.pop("gateway", {})}
    env.config.write_text(tomli_w.dumps({"gateway": gateway, "servers": servers, **document}))
    return f"http://127.0.0.1:{port}"


def start_gateway(env: Env) -> None:
    proc = env.run("gateway", "start", "--json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert json.loads(proc.stdout)["gateway"]["outcome"] == "started"


def token(env: Env, name: str, *options: str) -> str:
    proc = env.run("token", "create", name, *options)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def http(
    url: str, token: str | None = None, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request (a POST when there is a body): status, headers, body."""
    sent = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **(headers or {})}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=sent, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


async def _with_session(
    url: str, bearer: str, act: Callable[[Any], Awaitable[Any]], on_message: Callable[[Any], Any] | None, **options: Any
) -> Any:
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def handler(message: Any) -> None:
        if on_message is not None:
            on_message(message)

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=60) as client,
        streamable_http_client(url, http_client=client) as (read, write, *_),
        ClientSession(read, write, message_handler=handler, read_timeout_seconds=60, **options) as session,
    ):
        await session.initialize()
        return await act(session)


def with_session(
    url: str,
    bearer: str,
    act: Callable[[Any], Awaitable[Any]],
    on_message: Callable[[Any], Any] | None = None,
    **options: Any,
) -> Any:
    """Run `act(session)` in an initialized SDK client session over streamable HTTP (`options` go to the
    ClientSession: a list_roots_callback, ...)."""
    return asyncio.run(_with_session(url, bearer, act, on_message, **options))


def in_session(url: str, bearer: str) -> dict[str, str]:
    """The headers of a new session of `url` (opened with a plain initialize)."""
    status, headers, body = http(url, bearer, INITIALIZE)
    assert status == 200, body
    return {"Mcp-Session-Id": headers["mcp-session-id"]}


def one_server(env: Env, name: str, server: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """A gateway serving NAME alone: the URL of /servers/NAME/mcp, a token, the headers of a session there."""
    base = configure(env, {name: server})
    start_gateway(env)
    bearer = token(env, "t")
    url = f"{base}/servers/{name}/mcp"
    return url, bearer, in_session(url, bearer)


@contextlib.asynccontextmanager
async def sdk_client(url: str, bearer: str, mode: str) -> AsyncIterator[Any]:
    """The SDK's high-level Client over streamable HTTP, in `mode` ("auto": server/discover first)."""
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=60) as http_client,
        Client(streamable_http_client(url, http_client=http_client), mode=mode) as client,
    ):
        yield client


def text(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def rpc(url: str, bearer: str, session: str | None, method: str, request_id: int = 2) -> tuple[int, dict[str, Any]]:
    """One JSON-RPC request on a session (`Mcp-Session-Id`): the HTTP status and the JSON answer."""
    headers = {"Mcp-Session-Id": session} if session else {}
    status, _, body = http(url, bearer, {"jsonrpc": "2.0", "id": request_id, "method": method}, headers)
    return status, json.loads(body)


def open_session(url: str, bearer: str) -> tuple[str | None, dict[str, Any]]:
    """POST initialize: the new session's id (None when none was opened) and the answer."""
    status, headers, body = http(url, bearer, INITIALIZE)
    found = {k.lower(): v for k, v in headers.items()}
    return found.get("mcp-session-id"), json.loads(body) if body else {"status": status}


def take_a_slot(path: Any) -> socket.socket:
    """A client connection to a shim's socket, initialized, so that it holds one of its max_clients."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    sock.sendall(json.dumps(INITIALIZE).encode() + b"\n")
    sock.makefile("rb").readline()
    return sock


def get_stream(url: str, bearer: str, session: str) -> concurrent.futures.Future[bytes]:
    """Open the session's GET stream; the future holds all it sent once it ended."""
    sent = {"Accept": "text/event-stream", "Authorization": f"Bearer {bearer}", "Mcp-Session-Id": session}
    answer = urllib.request.urlopen(urllib.request.Request(url, headers=sent), timeout=60)
    assert answer.status == 200
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(answer.read)
    pool.shutdown(wait=False)
    return future


def delete(url: str, bearer: str, session: str) -> int:
    """DELETE the session: the HTTP status."""
    sent = {"Authorization": f"Bearer {bearer}", "Mcp-Session-Id": session}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=sent, method="DELETE"), timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code
