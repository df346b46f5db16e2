"""The gateway's HTTP app: MCP streamable HTTP (legacy era) per endpoint, /metrics, /healthz, /readyz.

POST carries one JSON-RPC message. A request is answered with JSON, or with an SSE stream when the
server sends progress before its answer; notifications and answers get 202. `initialize` opens a
session (`Mcp-Session-Id`), bound to the token that opened it (at most `max_sessions` a token: each is
a client of the shims); GET opens the session's stream of server messages (list_changed, log messages),
ending the one opened before; DELETE ends the session, as do its token's revocation and
`session_idle_timeout` unused (an hour by default). An `MCP-Protocol-Version` header naming a version the
gateway does not serve is refused (400); without one, the session's own. A sessionless `server/discover`
(a client of both eras probing) is "method not found" (404), so that it falls back to `initialize`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mcpctl import protocol
from mcpctl.config.model import GatewayConfig
from mcpctl.errors import ErrorType, Failure, MCPCtlError
from mcpctl.gateway.access import Access
from mcpctl.gateway.aggregate import AggregateSession
from mcpctl.gateway.members import Members
from mcpctl.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from mcpctl.gateway.sessions import ServerSession, Session
from mcpctl.gateway.tokens import Token
from mcpctl.gateway.upstream import Message

LOG = logging.getLogger("mcpctl.gateway")
SESSION_HEADER = "mcp-session-id"
KEEPALIVE = 15.0  # seconds between comments on an idle GET stream, so proxies keep it open
SWEEP_INTERVAL = 1.0  # seconds between looks for sessions to end (idle ones, those of a revoked token)
_END: Message = {}  # put on a GET stream's queue to end that stream
VERSION_HEADER = "mcp-protocol-version"
UNSUPPORTED_VERSION = -32022  # the 2026-07-28 era's error, with the versions served: a probing client falls back


class Gateway:
    def __init__(self, members: Members, access: Access, metrics: GatewayMetrics) -> None:
        self.members = members
        self.settings = members.config.gateway or GatewayConfig()
        self.access = access
        self.metrics = metrics
        self.sessions: dict[str, Session] = {}
        self.running: set[asyncio.Task[None]] = set()  # requests whose client closed their stream go on
        members.listeners.append(self._member_changed)

    def app(self) -> Starlette:
        methods = ["POST", "GET", "DELETE"]
        routes = [
            Route("/servers/{name}/mcp", self.mcp, methods=methods),
            Route("/groups/{group}/mcp", self.mcp, methods=methods),
            Route("/mcp", self.mcp, methods=methods),
            Route("/metrics", self.scrape),
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
        ]
        return Starlette(routes=routes)

    # -- probes and metrics ----------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return self.access.refused_origin(request) or JSONResponse({"ok": True})

    async def readyz(self, request: Request) -> Response:
        refused = self.access.refused_origin(request)
        if refused:
            return refused
        serving = [await asyncio.to_thread(self.members.serving, name) for name in self.members.config.servers]
        ready = all(serving)
        body = {"ready": ready, "servers": len(serving), "serving": sum(serving)}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def scrape(self, request: Request) -> Response:
        """The metrics; a token limited to servers or a group sees only the series of those servers."""
        refused, scope = self.access.refused_origin(request), None
        if refused is None and not (self.members.config.gateway and self.members.config.gateway.metrics_public):
            token, refused = self.access.authenticate(request)
            scope = self._scope(token) if token is not None else None
        if refused:
            return refused
        self.metrics.sessions.set(len(self.sessions))
        return Response(await asyncio.to_thread(self.metrics.text, scope), media_type=CONTENT_TYPE)

    def _scope(self, token: Token) -> frozenset[str] | None:
        """The servers whose series the token may read; None: every server's."""
        if token.servers is None and token.group is None:
            return None
        members = self.members.config.groups.get(token.group or "", ())
        return frozenset(name for name in self.members.config.servers if token.allows(name, None, members))

    # -- MCP -------------------------------------------------------------------------------------

    async def mcp(self, request: Request) -> Response:
        self.metrics.connections.inc()
        try:
            refused = self.access.refused_origin(request)
            token, failed = (None, refused) if refused else self.access.authenticate(request)
            if failed is not None:
                return failed
            endpoint, members = self._endpoint(request)
            if endpoint is None:
                return JSONResponse({"error": members[0] if members else "not found"}, status_code=404)
            assert token is not None
            if not self._in_scope(token, request):
                return self.access.forbidden(f"/{endpoint}/mcp" if endpoint != "mcp" else "/mcp")
            return await self._mcp(request, endpoint, members, token.id)
        finally:
            self.metrics.connections.dec()

    def _endpoint(self, request: Request) -> tuple[str | None, tuple[str, ...]]:
        config = self.members.config
        name, group = request.path_params.get("name"), request.path_params.get("group")
        if name is not None:
            found = name in config.servers
            return (f"servers/{name}", (name,)) if found else (None, (f"no server {name!r} in the config",))
        if group is not None:
            found = group in config.groups
            return (
                (f"groups/{group}", config.groups[group]) if found else (None, (f"no group {group!r} in the config",))
            )
        return "mcp", tuple(config.servers)

    def _in_scope(self, token: Any, request: Request) -> bool:
        name, group = request.path_params.get("name"), request.path_params.get("group")
        members = self.members.config.groups.get(token.group or "", ())
        return bool(token.allows(name, group, members))

    async def _mcp(self, request: Request, endpoint: str, members: tuple[str, ...], token_id: str) -> Response:
        unsupported = _unsupported_version(request)
        if unsupported is not None:
            return unsupported
        session_id = request.headers.get(SESSION_HEADER)
        session = self.sessions.get(session_id or "")
        if session is not None and (session.endpoint != endpoint or session.token_id != token_id):
            session = None  # a session is only its own endpoint's and its own token's
        if request.method == "DELETE":
            if session is None:
                return _status(404, "no such session")
            self._end(session)
            return Response(status_code=204)
        if request.method == "GET":
            if session is None:
                return _status(400 if session_id is None else 404, "GET needs the Mcp-Session-Id of a session")
            return self._stream(session)
        return await self._post(request, endpoint, members, session, session_id, token_id)

    async def _post(
        self,
        request: Request,
        endpoint: str,
        members: tuple[str, ...],
        session: Session | None,
        session_id: str | None,
        token_id: str,
    ) -> Response:
        try:
            message = json.loads(await request.body())
        except ValueError:
            return JSONResponse(protocol.error_response(None, protocol.PARSE_ERROR, "not JSON"), status_code=400)
        if not isinstance(message, dict):
            text = "one JSON-RPC message per POST (batches are not supported)"
            return JSONResponse(protocol.error_response(None, protocol.INVALID_REQUEST, text), status_code=400)
        if message.get("method") == "initialize" and session is None:
            refused = self._full(token_id, message.get("id"))
            if refused is not None:
                return refused
            session = self._open(endpoint, members, token_id)
        elif session is None and message.get("method") == "server/discover":
            return JSONResponse(protocol.method_not_found(message.get("id"), "server/discover"), status_code=404)
        elif session is None:
            return _status(400 if session_id is None else 404, "no such session: initialize first")
        session.last_used = time.monotonic()
        if "method" not in message or "id" not in message:
            await session.notify(message)
            return Response(status_code=202)
        response = await self._answer(session, message)
        if session.id in self.sessions:  # not for an initialize that failed: no session was opened
            response.headers["Mcp-Session-Id"] = session.id
        return response

    def _full(self, token_id: str, request_id: object) -> Response | None:
        """429 for a token with max_sessions open: each session is a client of its servers' shims, and one
        token must not take every max_clients place of a server."""
        cap = self.settings.max_sessions
        if sum(session.token_id == token_id for session in self.sessions.values()) < cap:
            return None
        text = f"this token has {cap} sessions open, the gateway's max_sessions"
        idle = f"idle ones end after {self.settings.session_idle_timeout:g}s, the gateway's session_idle_timeout"
        hint = f"end sessions with DELETE ({idle}), or raise [gateway] max_sessions"
        failure = Failure(ErrorType.TOO_MANY_CLIENTS, text, hint)
        return JSONResponse(protocol.failure_response(request_id, failure), status_code=429)  # its answer

    def _open(self, endpoint: str, members: tuple[str, ...], token_id: str) -> Session:
        if endpoint.startswith("servers/"):
            session: Session = ServerSession(self.members, self.metrics, token_id, members[0])
        else:
            session = AggregateSession(self.members, self.metrics, token_id, endpoint, members)
        self.sessions[session.id] = session
        return session

    async def _answer(self, session: Session, message: Message) -> Response:
        """JSON when the answer comes first; an SSE stream when notifications for the request come before it."""
        queue: asyncio.Queue[tuple[bool, Message]] = asyncio.Queue()

        async def run() -> None:
            try:
                answer = await session.request(message, lambda note: queue.put_nowait((False, note)))
            except Exception:  # whatever went wrong, the request gets its answer: never a hang
                LOG.exception("%s: %s failed", session.endpoint, message.get("method"))
                failure = Failure.of(
                    ErrorType.INTERNAL, detail="the gateway failed to answer this request (see its log)"
                )
                answer = protocol.failure_response(message.get("id"), failure)
            queue.put_nowait((True, answer))

        task = asyncio.create_task(run())
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        final, first = await queue.get()
        if final:
            if message.get("method") == "initialize" and "error" in first:
                self.sessions.pop(session.id, None)
            return JSONResponse(first)

        async def events() -> AsyncIterator[bytes]:
            # A client that closes the stream has not cancelled the request (2025-11-25: "Disconnection SHOULD
            # NOT be interpreted as the client cancelling"); it sends notifications/cancelled for that.
            yield _event(first)
            while True:
                done, item = await queue.get()
                yield _event(item)
                if done:
                    return

        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    def _stream(self, session: Session) -> Response:
        _end_stream(session)  # a second GET takes over from the first, which ends
        queue: asyncio.Queue[Message] = asyncio.Queue()
        session.stream = queue

        async def events() -> AsyncIterator[bytes]:
            self.metrics.connections.inc()
            try:
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), KEEPALIVE)
                    except TimeoutError:
                        yield b": keepalive\n\n"
                        continue
                    if item is _END:
                        return
                    yield _event(item)
            finally:
                self.metrics.connections.dec()
                if session.stream is queue:
                    session.stream = None

        headers = {"Cache-Control": "no-cache", "Mcp-Session-Id": session.id}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    def _member_changed(self, name: str, up: bool) -> None:
        for session in list(self.sessions.values()):
            session.member_changed(name, up)

    async def sweep(self) -> None:
        """Forever: end the sessions of tokens no longer valid (revoked, expired) and those idle too long."""
        while True:
            try:
                self._expire()
            except MCPCtlError as exc:  # an unreadable tokens file: every request is refused meanwhile
                LOG.warning("cannot read the tokens: %s", exc.message)
            await asyncio.sleep(SWEEP_INTERVAL)

    def _expire(self) -> None:
        now, tokens = time.monotonic(), self.access.tokens.load()
        for session in list(self.sessions.values()):
            token = tokens.get(session.token_id or "")
            idle = session.stream is None and now - session.last_used > self.settings.session_idle_timeout
            if idle or token is None or token.state() != "active":
                self._end(session)

    def _end(self, session: Session) -> None:
        """End a session: its GET stream, its connections to the shims."""
        if self.sessions.pop(session.id, None) is not None:
            _end_stream(session)
            session.close()

    def close(self) -> None:
        for session in list(self.sessions.values()):
            self._end(session)


def _end_stream(session: Session) -> None:
    """End the session's GET stream, if one is open; what it had not sent yet is dropped."""
    queue, session.stream = session.stream, None
    if queue is not None:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_END)


def _event(message: Message) -> bytes:
    return b"event: message\ndata: " + json.dumps(message, separators=(",", ":")).encode() + b"\n\n"


def _unsupported_version(request: Request) -> Response | None:
    """400 for a protocol version header the gateway does not serve (the spec's MUST); None when it serves it."""
    version = request.headers.get(VERSION_HEADER)
    if version is None or version in protocol.KNOWN_VERSIONS:
        return None
    served = list(protocol.KNOWN_VERSIONS)
    text = f"Unsupported protocol version {version!r} (MCP-Protocol-Version): the gateway serves {', '.join(served)}"
    error = protocol.error_response(None, UNSUPPORTED_VERSION, text, {"supported": served, "requested": version})
    return JSONResponse(error, status_code=400)


def _status(code: int, text: str) -> Response:
    return JSONResponse(protocol.error_response(None, protocol.INVALID_REQUEST, text), status_code=code)
