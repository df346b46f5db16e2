"""One connection of the gateway to a shim's MCP socket (run/NAME.sock): newline-delimited JSON-RPC.

The shim multiplexes its server's one session, answers our `initialize` from its own handshake and
routes answers and progress back to this connection. Requests get ids of ours; the caller maps them.
The gateway answers no server request but `ping`, so it declares none of the client capabilities that
invite them: the shim then asks a client that can answer (a `connect` one) or answers as it does when
none can. A line may be as long as the server's `max_message_bytes` (and the ids the shim rewrote).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcpctl import protocol
from mcpctl.constants import DEFAULT_MAX_MESSAGE_BYTES
from mcpctl.errors import ErrorType, Failure, MCPCtlError
from mcpctl.privdir import own_socket

Message = dict[str, Any]
LOG = logging.getLogger("mcpctl.gateway")
LINE_SLACK = 64 * 1024  # past max_message_bytes: the ids and progress tokens the shim rewrote may be longer
ENDS = 4096  # bytes kept of each end of a line too long to read, to tell whose answer it was
CONNECTION_LOST = -32000
REQUEST_CANCELLED = -32800  # what the 2025 era's streamable HTTP answers a cancelled request with
UNANSWERED = ("roots", "sampling", "elicitation", "tasks")  # client capabilities of server requests we decline


class Unavailable(Exception):
    """The server cannot be reached now: why, as mcpctl's own failure, whose type says whether trying again
    can help (not_running, too_many_clients, command_not_found, ...), as `mcpctl connect` says it."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Upstream:
    """A live connection to one shim; `closed` once the shim hung up (a stop or a restart)."""

    def __init__(
        self,
        name: str,
        on_notification: Callable[[Upstream, Message], None],
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.name = name
        self.max_message_bytes = max_message_bytes
        self.on_notification = on_notification
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Message]] = {}
        self.closed = False
        self.init_result: Message = {}
        self.refused: Failure | None = None  # the shim's refusal of this connection (past max_clients)
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def open(self, path: Path, init_params: Message, timeout: float) -> Message:
        """Connect and initialize; the shim's answer (its server's capabilities) is returned. Unavailable when
        no shim listens (the path is never said: it is the state dir's, not a remote client's business)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, str(own_socket(path)))
        except MCPCtlError as exc:  # a planted socket: said in the gateway's log, not to a remote client
            sock.close()
            self.closed = True
            LOG.warning("%s: %s", self.name, exc.message)
            detail = "its socket is refused (the gateway's log says why)"
            raise Unavailable(Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=detail)) from None
        except OSError:
            sock.close()
            self.closed = True
            raise Unavailable(Failure.of(ErrorType.NOT_RUNNING, name=self.name)) from None
        spare = sock.dup()  # a shim past max_clients writes one line and closes: a write that fails first
        try:  # closes our transport unread, so the line is read from this second descriptor
            return await self._initialize(sock, spare, init_params, timeout)
        finally:
            spare.close()

    async def _initialize(self, sock: socket.socket, spare: socket.socket, params: Message, timeout: float) -> Message:
        reader, self._writer = await asyncio.open_unix_connection(sock=sock, limit=self.max_message_bytes + LINE_SLACK)
        self._reader_task = asyncio.create_task(self._read(reader))
        answer = lost(None, f"the connection to {self.name} was lost (stopped or restarting)")
        with contextlib.suppress(OSError):
            answer = await self.request({"method": "initialize", "params": _declared(params)}, timeout)
        if "error" in answer:
            await asyncio.wait({self._reader_task}, timeout=1.0)  # the lines it read yet to be dispatched
            self.refused = self.refused or _refusal_in(spare)
            self.close()
            raise Unavailable(self.refused or _initialize_failure(answer))
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.init_result = answer.get("result") or {}
        return self.init_result

    def next_id(self) -> int:
        return next(self.ids)

    async def request(self, message: Message, timeout: float | None = None, upstream_id: int | None = None) -> Message:
        """Send a request (its id replaced by ours, `upstream_id` when the caller took one) and wait for the
        answer, with our id in it.

        A connection lost meanwhile is answered with a JSON-RPC error; a cancelled wait tells the server.
        OSError when the request could not be sent: nothing reached the server, so it may be sent again."""
        upstream_id = self.next_id() if upstream_id is None else upstream_id
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.pending[upstream_id] = future
        try:
            await self.send({**message, "jsonrpc": "2.0", "id": upstream_id})
            return await asyncio.wait_for(future, timeout)
        except asyncio.CancelledError:
            params = {"requestId": upstream_id, "reason": "the HTTP client went away"}
            with contextlib.suppress(Exception):
                await self.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
            raise
        except TimeoutError:
            return lost(upstream_id, f"{self.name} did not answer within {timeout:g}s")
        finally:
            self.pending.pop(upstream_id, None)

    async def cancel(self, upstream_id: int, reason: object) -> None:
        """The client cancelled the request: the server is told, and the wait for it ends with the error the
        2025 era answers a cancelled request with (the server sends no answer to what was cancelled)."""
        future = self.pending.get(upstream_id)
        if future is None or future.done():
            return  # answered already, or never ours: nothing to cancel
        params: Message = {"requestId": upstream_id}
        if isinstance(reason, str):
            params["reason"] = reason
        with contextlib.suppress(OSError):
            await self.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})
        if not future.done():
            future.set_result(protocol.error_response(upstream_id, REQUEST_CANCELLED, "Request cancelled"))

    async def send(self, message: Message) -> None:
        if self.closed or self._writer is None:
            raise ConnectionResetError(f"the connection to {self.name} is closed")
        self._writer.write(protocol.encode(message))
        await self._writer.drain()

    def close(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None and self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
        for upstream_id, future in list(self.pending.items()):
            if not future.done():
                future.set_result(lost(upstream_id, f"the connection to {self.name} was lost (stopped or restarting)"))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await self._line(reader):
                if line.strip():
                    await self._dispatch(protocol.decode(line))
        except (OSError, ValueError, protocol.ProtocolError) as exc:
            LOG.warning("%s: connection ended: %s", self.name, exc)
        finally:
            self.close()

    async def _line(self, reader: asyncio.StreamReader) -> bytes:
        """The next line (b"" at the end); one past the limit is skipped, and its request answered so."""
        while True:
            try:
                return await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return exc.partial
            except asyncio.LimitOverrunError as exc:
                await self._too_large(reader, exc.consumed)

    async def _too_large(self, reader: asyncio.StreamReader, buffered: int) -> None:
        """Skip a line past the limit as it arrives; the request it answers gets "message too large"."""
        head = tail = await reader.readexactly(buffered)
        size = buffered
        while True:
            try:
                end = await reader.readuntil(b"\n")
                break
            except asyncio.LimitOverrunError as exc:
                tail = await reader.readexactly(exc.consumed)
                size += exc.consumed
            except asyncio.IncompleteReadError:
                return  # the shim hung up mid-line: the connection's end says the rest
        size += len(end) - 1
        upstream_id, _ = protocol.sender_of(head[:ENDS], (tail + end)[-ENDS:])
        LOG.warning("%s: a message of %d bytes (id %r) is past max_message_bytes", self.name, size, upstream_id)
        future = self.pending.get(upstream_id) if isinstance(upstream_id, int) else None
        if future is not None and not future.done():
            future.set_result(protocol.too_large(upstream_id, size, self.max_message_bytes, self.name))

    async def _dispatch(self, message: Message) -> None:
        method = message.get("method")
        if method is None:
            self.refused = self.refused or protocol.refusal(message)
            future = self.pending.get(message.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
        elif "id" in message:  # the server asks, though we declared none of UNANSWERED: declined
            answer = (
                protocol.result_response(message["id"], {})
                if method == "ping"
                else protocol.method_not_found(message["id"], str(method))
            )
            await self.send(answer)
        else:
            self.on_notification(self, message)


def _declared(init_params: Message) -> Message:
    """The client's initialize parameters, less the capabilities of the server requests we decline."""
    capabilities = init_params.get("capabilities")
    if not isinstance(capabilities, dict):
        return init_params
    kept = {key: value for key, value in capabilities.items() if key not in UNANSWERED}
    return {**init_params, "capabilities": kept}


def lost(request_id: object, text: str) -> Message:
    data = {"type": "connection_lost", "retryable": True}
    return protocol.error_response(request_id, CONNECTION_LOST, text, data)


def _refusal_in(spare: socket.socket) -> Failure | None:
    """The shim's refusal line left unread in the socket (our transport closed on a failed write)."""
    try:
        line = spare.recv(64 * 1024, socket.MSG_DONTWAIT).split(b"\n", 1)[0]
        return protocol.refusal(protocol.decode(line)) if line.strip() else None
    except (OSError, ValueError, protocol.ProtocolError):
        return None


def _initialize_failure(answer: Message) -> Failure:
    """A failed initialize as a failure: typed as the shim typed it, else the connection was lost."""
    error = answer["error"] if isinstance(answer.get("error"), dict) else {}
    data: Message = error["data"] if isinstance(error.get("data"), dict) else {}
    failure = Failure.from_json({"type": ErrorType.CONNECTION_LOST, **data, "message": error.get("message")})
    assert failure is not None
    return failure
