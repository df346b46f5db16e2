"""The transport under a Manager session: newline-delimited JSON-RPC over the shim's MCP socket, as the
SDK's stream pair, that outlives the shim.

When the socket closes (the shim was replaced, or the server stopped and started again), the requests in
flight are answered with a retryable `connection_lost` error (or with the shim's refusal, when it said
why it would not serve this connection: past `max_clients`), and the link dials again: at once without
starting anything, else on the session's next message (starting the server if the session may). On a new
socket it replays the session's own `initialize` (the shim answers it from its handshake) and
`notifications/initialized`, so the SDK session never notices that the connection is another one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

from mcpctl import protocol
from mcpctl.errors import ErrorType, Failure, MCPCtlError

Dial = Callable[[bool], Awaitable[ByteStream]]  # dial(may_start): a connected socket, or MCPCtlError
Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]
REPLAY_TIMEOUT = 30.0  # seconds for a new shim to answer the replayed initialize
_GONE_PAUSE = 0.05  # before dialing again when a socket closed before the replay was answered
_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


class _NoShim(Exception):
    """A socket that closed before it said a word had no shim behind it: a killed shim's listener outlives
    the rest of it for a moment, takes a connection and drops it. (One that refused, saying why, had.)"""


class Link:
    """One session's connection to a shim, and each next one."""

    def __init__(self, name: str, dial: Dial, first: ByteStream) -> None:
        self.name = name
        self._dial = dial
        self._stream: ByteStream | None = first
        self._carry = b""  # bytes a replay read past the answer it waited for
        self._up = anyio.Event()
        self._up.set()
        self._dialing = anyio.Lock()
        self._pending: set[int | str] = set()  # ids of the session's requests not answered yet
        self._hello: dict[str, Any] | None = None  # the session's initialize params, replayed on a new socket
        self._refusal: Failure | None = None  # why the shim would not serve this connection (max_clients)
        self._replays = itertools.count(1)
        # Unbounded toward the session: the link answers lost requests from its writer, which must never wait
        # for a dispatcher that may itself be waiting to write.
        self._to_session, self._reader = anyio.create_memory_object_stream[SessionMessage | Exception](math.inf)
        self._writer, self._from_session = anyio.create_memory_object_stream[SessionMessage](0)

    # -- socket → session --------------------------------------------------------------------

    async def pump_in(self) -> None:
        while True:
            await self._up.wait()
            stream = self._stream
            if stream is None:
                await anyio.lowlevel.checkpoint()
                continue
            reason = await self._read_all(stream)
            if await self._lost(stream, reason):
                with contextlib.suppress(MCPCtlError):  # nobody to tell: the next message dials again
                    await self._reconnect(may_start=False)

    async def _read_all(self, stream: ByteStream) -> str:
        """Deliver every line until the socket closes; why it closed."""
        buffer, self._carry = bytearray(self._carry), b""
        scanned = 0
        try:
            while True:
                while (end := buffer.find(b"\n", scanned)) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    scanned = 0
                    await self._deliver(line)
                scanned = len(buffer)
                buffer += await stream.receive()
        except anyio.EndOfStream:
            return "the shim closed the connection"
        except _BROKEN as exc:
            return str(exc) or type(exc).__name__

    async def _deliver(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            data = json.loads(line)
            message = jsonrpc_message_adapter.validate_python(data, by_name=False)
        except (ValueError, ValidationError) as exc:
            await self._to_session.send(exc)
            return
        if isinstance(data, dict) and (refusal := protocol.refusal(data)) is not None:
            self._refusal = refusal  # the shim closes next: what was in flight is answered with it
            return
        if isinstance(data, dict) and "method" not in data:
            self._pending.discard(data.get("id"))
        await self._to_session.send(SessionMessage(message))

    async def _lost(self, stream: ByteStream, reason: str) -> bool:
        """Drop a closed socket and answer what was in flight on it; False if it was dropped already."""
        if stream is not self._stream:
            return False
        self._stream, self._up = None, anyio.Event()
        with contextlib.suppress(*_BROKEN):
            await stream.aclose()
        failure = self._refusal or Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=reason)
        pending, self._pending = self._pending, set()
        for request_id in pending:
            await self._answer(request_id, failure)
        return True

    async def _answer(self, request_id: int | str, failure: Failure) -> None:
        answer = jsonrpc_message_adapter.validate_python(protocol.failure_response(request_id, failure))
        await self._to_session.send(SessionMessage(answer))

    # -- session → socket --------------------------------------------------------------------

    async def pump_out(self) -> None:
        async with self._from_session:
            async for message in self._from_session:
                data = message.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
                await self._forward(data)

    async def _forward(self, data: dict[str, Any]) -> None:
        request_id = data.get("id") if "method" in data else None
        if data.get("method") == "initialize":
            self._hello = data.get("params") or {}
        reason = "the shim closed the connection"
        for _ in range(2):  # the socket may have closed under us: once more on the next one
            try:
                stream = self._stream or await self._reconnect(may_start=True)
            except MCPCtlError as error:
                if request_id is not None:
                    await self._answer(request_id, Failure(error.type, error.message, error.hint))
                return
            if request_id is not None:
                self._pending.add(request_id)
            try:
                await stream.send(protocol.encode(data))
                return
            except _BROKEN as exc:
                self._pending.discard(request_id)
                reason = str(exc) or type(exc).__name__
                await self._lost(stream, reason)
        if request_id is not None:
            lost = Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=reason)
            await self._answer(request_id, self._refusal or lost)

    # -- dialing again -----------------------------------------------------------------------

    async def _reconnect(self, may_start: bool) -> ByteStream:
        async with self._dialing:
            if self._stream is not None:  # the other pump got there first
                return self._stream
            deadline = anyio.current_time() + REPLAY_TIMEOUT
            while True:
                stream = await self._dial(may_start)
                try:
                    if self._hello is not None:
                        with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                            await self._replay(stream)
                    break
                except BaseException as exc:
                    with contextlib.suppress(*_BROKEN):
                        await stream.aclose()
                    if isinstance(exc, _NoShim) and anyio.current_time() < deadline:
                        await anyio.sleep(_GONE_PAUSE)
                        continue
                    if isinstance(exc, (TimeoutError, protocol.ProtocolError, _NoShim, *_BROKEN)):
                        raise self._failed_replay(exc) from None
                    raise
            self._stream, self._refusal = stream, None
            self._up.set()
            return stream

    async def _replay(self, stream: ByteStream) -> None:
        """The session's initialize again, on a new socket; its answer is ours (the session has one)."""
        replay_id = f"mcpctl-reinit-{next(self._replays)}"
        hello = {"jsonrpc": "2.0", "id": replay_id, "method": "initialize", "params": self._hello}
        buffer = b""
        try:
            await stream.send(protocol.encode(hello))
            while b"\n" not in buffer:
                buffer += await stream.receive()
        except _BROKEN as exc:
            if buffer:
                raise
            raise _NoShim(str(exc) or "the socket closed before a word") from None
        while True:
            while b"\n" not in buffer:
                buffer += await stream.receive()
            line, buffer = buffer.split(b"\n", 1)
            message = protocol.decode(line)
            if message.get("id") == replay_id and "method" not in message:
                break
            await self._deliver(line)  # a notification that came first
            if self._refusal is not None:
                raise MCPCtlError.from_failure(self._refusal)
        self._carry = buffer
        if "error" in message:
            raise self._refused(message["error"])
        await stream.send(protocol.encode(protocol.initialized_notification()))

    def _refused(self, error: object) -> MCPCtlError:
        failure = Failure.from_json(error.get("data")) if isinstance(error, dict) else None
        if failure is not None and isinstance(error, dict):
            return MCPCtlError.from_failure(Failure(failure.type, str(error.get("message", "")), failure.hint))
        return MCPCtlError.of(ErrorType.CONNECTION_LOST, name=self.name, detail=f"the new shim refused: {error}")

    def _failed_replay(self, exc: BaseException) -> MCPCtlError:
        detail = f"the new shim did not answer initialize: {exc or type(exc).__name__}"
        return MCPCtlError.of(ErrorType.CONNECTION_LOST, name=self.name, detail=detail)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(*_BROKEN):
                await stream.aclose()
        for end in (self._to_session, self._reader, self._writer, self._from_session):
            end.close()

    @property
    def streams(self) -> Streams:
        return self._reader, self._writer


@asynccontextmanager
async def linked(name: str, dial: Dial, first: ByteStream) -> AsyncIterator[Streams]:
    """The stream pair for a `ClientSession` on `first`, kept alive across shims by `dial`."""
    link = Link(name, dial, first)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(link.pump_in)
        tasks.start_soon(link.pump_out)
        try:
            yield link.streams
        finally:
            tasks.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await link.aclose()
