"""HTTP sessions of the gateway (one per `Mcp-Session-Id`) and the one-server kind.

A session forwards each client request to a shim connection of its own (ids of ours upstream, the
client's back), routes progress to the request that asked for it and everything else the servers say
to the client's GET stream. A lost connection (a stop, a restart) is opened again on the next request
with the client's own initialize parameters, so the HTTP session outlives the server's restarts.

Only the legacy era (initialize, then requests) is routed here; the 2026-07-28 era's `server/discover`
is answered "method not found", so that clients fall back to initialize. A client cancels a request by
sending `notifications/cancelled` (the 2025 era's way; a closed stream is no cancellation there): it goes
to the request's shim under the id we gave it there.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

from mcpctl import protocol
from mcpctl.gateway.members import Members
from mcpctl.gateway.metrics import GatewayMetrics
from mcpctl.gateway.upstream import REQUEST_CANCELLED, Message, Unavailable, Upstream, lost

Emit = Callable[[Message], None]
STREAM_LIMIT = 1000  # messages kept for a GET stream that is slow to read; older ones are dropped


class Session:
    """What every kind of session shares: the GET stream, progress routing, forwarding with metrics."""

    endpoint = ""
    members: tuple[str, ...] = ()

    def __init__(self, hub: Members, metrics: GatewayMetrics, token_id: str | None) -> None:
        self.id = secrets.token_urlsafe(24)
        self.hub = hub
        self.metrics = metrics
        self.token_id = token_id
        self.init_params: Message = {}
        self.stream: asyncio.Queue[Message] | None = None
        self.progress: dict[object, Emit] = {}
        self.inflight: dict[int | str, tuple[Upstream, int]] = {}  # the client's request id -> where it went
        self.last_used = time.monotonic()

    async def request(self, message: Message, emit: Emit) -> Message:
        """The answer to one client request (with the client's id)."""
        raise NotImplementedError

    async def notify(self, message: Message) -> None:
        """A client notification or answer."""
        if message.get("method") == "notifications/cancelled":
            params = message.get("params") or {}
            request_id = params.get("requestId") if isinstance(params, dict) else None
            found = self.inflight.pop(request_id, None) if isinstance(request_id, int | str) else None
            if found is not None:
                upstream, upstream_id = found
                await upstream.cancel(upstream_id, params.get("reason"))

    def close(self) -> None:
        """The client ended the session (DELETE) or it expired."""

    def push(self, message: Message) -> None:
        """A message for the client's GET stream; dropped when no stream is open."""
        if self.stream is not None:
            if self.stream.qsize() >= STREAM_LIMIT:
                self.stream.get_nowait()
            self.stream.put_nowait(message)

    def from_server(self, upstream: Upstream, message: Message) -> None:
        if message.get("method") == "notifications/progress":
            params = message.get("params") or {}
            emit = self.progress.get(params.get("progressToken"))
            if emit is not None:
                emit(message)
            return
        self.on_server_notification(upstream, message)

    def on_server_notification(self, upstream: Upstream, message: Message) -> None:
        self.push(message)

    def member_changed(self, name: str, up: bool) -> None:
        """A member went down or came back (the aggregate kinds tell their clients)."""

    async def forward(self, upstream: Upstream, message: Message, emit: Emit, server: str) -> Message:
        """Send a client's request on `upstream`; its answer with the client's id, counted in the metrics."""
        token = _progress_token(message)
        if token is not None:
            self.progress[token] = emit
        started = time.perf_counter()
        method, client_id = str(message.get("method")), message.get("id")
        sent = (upstream, upstream.next_id())
        if isinstance(client_id, int | str):  # a JSON-RPC id; any other the client cannot cancel by
            self.inflight[client_id] = sent
        try:
            answer = await upstream.request({k: v for k, v in message.items() if k != "id"}, upstream_id=sent[1])
        finally:
            self.progress.pop(token, None)
            if isinstance(client_id, int | str) and self.inflight.get(client_id) == sent:
                del self.inflight[client_id]
        self.metrics.request(server, method, _outcome(answer), time.perf_counter() - started)
        return {**answer, "id": message.get("id")}


class ServerSession(Session):
    """`/servers/NAME/mcp`: one server's shared session, through its shim."""

    def __init__(self, hub: Members, metrics: GatewayMetrics, token_id: str | None, name: str) -> None:
        super().__init__(hub, metrics, token_id)
        self.name = name
        self.endpoint = f"servers/{name}"
        self.members = (name,)
        self.upstream: Upstream | None = None
        self._opening = asyncio.Lock()

    async def request(self, message: Message, emit: Emit) -> Message:
        method = message.get("method")
        if method == "server/discover":
            return protocol.method_not_found(message.get("id"), "server/discover")
        if method == "initialize":
            self.init_params = message.get("params") or {}
        for attempt in (1, 2):  # a connection found closed only as we send is opened again, once
            try:
                upstream = await self._connected()
            except Unavailable as exc:
                self.metrics.request(self.name, str(method), "unavailable", 0.0)
                return protocol.failure_response(message.get("id"), exc.failure)
            if method == "initialize":
                return protocol.result_response(message.get("id"), upstream.init_result)
            try:
                return await self.forward(upstream, message, emit, self.name)
            except OSError:
                upstream.close()
                if attempt == 2:
                    break
        return lost(message.get("id"), f"{self.name}: the connection to its shim keeps closing")

    async def _connected(self) -> Upstream:
        async with self._opening:  # concurrent requests after a restart open one connection
            if self.upstream is None or self.upstream.closed:
                self.upstream = await self.hub.open(self.name, self.init_params, self.from_server, self.hub.auto_start)
            return self.upstream

    async def notify(self, message: Message) -> None:
        method = message.get("method")
        upstream = self.upstream
        if method in ("notifications/initialized", None) or upstream is None or upstream.closed:
            return  # our connection sent its own initialized; the gateway asks clients nothing
        if method == "notifications/cancelled":
            await super().notify(message)
            return
        try:
            await upstream.send(message)
        except OSError:
            # The shim hung up as we wrote: its reset or end is read in the loop's turn before our reader's, which
            # would close the connection next. The notification was for the server session that ended with
            # it, so it goes where it would have gone a moment later (nowhere), and the client still gets 202.
            upstream.close()

    def close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()


def _progress_token(message: Message) -> object:
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get("progressToken") if isinstance(meta, dict) else None


def _outcome(answer: dict[str, Any]) -> str:
    error = answer.get("error")
    if "result" in answer or not isinstance(error, dict):
        return "ok" if "result" in answer else "error"
    if error.get("code") == REQUEST_CANCELLED:
        return "cancelled"
    data = error.get("data")
    return "lost" if isinstance(data, dict) and data.get("type") == "connection_lost" else "error"
