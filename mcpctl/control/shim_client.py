"""A small MCP client of a shim's socket, for `tools`, `call` and `ping`, in the era its server speaks.

It asks `server/discover` first: the shim answers it with the server's own versions, so a modern
server is spoken to in the 2026-07-28 envelope (and pinged with `server/discover`, that era having no
`ping`), a legacy one after `initialize`.

It speaks newline-delimited JSON-RPC itself: importing the mcp SDK alone costs ~0.7 s, more than
a whole call on a warm server should take.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import time
from collections.abc import Callable

from mcpctl import __version__, protocol
from mcpctl.clock import jitter
from mcpctl.constants import MCP_PROTOCOL_VERSION
from mcpctl.errors import ErrorType, Failure
from mcpctl.hints import Any, TypeVar

T = TypeVar("T")

RETRY_BASE = 0.1  # seconds before the first retry; doubles each time, up to RETRY_MAX, plus jitter
RETRY_MAX = 2.0
MODERN_VERSION = "2026-07-28"
_NS = "io.modelcontextprotocol/"


class RemoteError(Exception):
    """The other side answered a request with a JSON-RPC error."""

    def __init__(self, method: str, error: object) -> None:
        error = error if isinstance(error, dict) else {"message": str(error)}
        data = error.get("data")
        self.method = method
        self.code = error.get("code")
        self.message = str(error.get("message", "error"))
        self.data = data if isinstance(data, dict) else {}
        super().__init__(self.message)

    @property
    def mcpctl_type(self) -> ErrorType | None:
        """The error's type when the shim (not the server) raised it."""
        if self.code != protocol.MCPCTL_ERROR:
            return None
        try:
            return ErrorType(str(self.data.get("type")))
        except ValueError:
            return None

    @property
    def retryable(self) -> bool:
        return self.mcpctl_type is not None and self.data.get("retryable") is True


class Refused(Exception):
    """The shim would not serve this connection (past `max_clients`, out of file descriptors): it said why
    under id null and closed it. Never retried: a full shim stays full longer than a few retries last."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Lost(Exception):
    """The connection closed before the answer came."""


class Session:
    """One connection to a shim's socket: requests in, answers out, server requests declined."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.ids = itertools.count(1)
        self.on_notification: Callable[[dict[str, Any]], None] | None = None
        self.envelope: dict[str, Any] | None = None  # the modern era's per-request _meta, once chosen

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def open(self, deadline: float) -> dict[str, Any]:
        """Choose the era the server speaks: the discover result (modern), or the initialize result."""
        info = {"name": "mcpctl", "version": __version__}
        envelope = {f"{_NS}protocolVersion": MODERN_VERSION, f"{_NS}clientInfo": info, f"{_NS}clientCapabilities": {}}
        try:
            found = self.request("server/discover", {"_meta": envelope}, deadline)
        except RemoteError:
            found = None  # a shim older than the eras: the legacy handshake
        versions = found.get("supportedVersions") if isinstance(found, dict) else None
        if isinstance(versions, list) and MODERN_VERSION in versions:
            self.envelope = envelope
            return dict(found) if isinstance(found, dict) else {}
        return self.initialize(deadline)

    def ping(self, deadline: float) -> None:
        """A round trip: `ping`, or in the modern era (which has none) `server/discover`."""
        self.request("server/discover" if self.envelope is not None else "ping", None, deadline)

    def initialize(self, deadline: float) -> dict[str, Any]:
        params = {
            "protocolVersion": MCP_PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcpctl", "version": __version__},
        }
        result = self.request("initialize", params, deadline)
        self.notify("notifications/initialized")
        return result if isinstance(result, dict) else {}

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._send(message)

    def request(self, method: str, params: dict[str, Any] | None, deadline: float) -> Any:
        """Send a request and wait for its answer: the result, or RemoteError, Lost, TimeoutError."""
        request_id = next(self.ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if self.envelope is not None:
            params = {**(params or {}), "_meta": {**(params or {}).get("_meta", {}), **self.envelope}}
        if params is not None:
            message["params"] = params
        self._send(message)
        while True:
            answer = self._receive(deadline)
            if "method" in answer:
                self._on_server_message(answer)
            elif (refusal := protocol.refusal(answer)) is not None:
                raise Refused(refusal)
            elif answer.get("id") == request_id:
                if "error" in answer:
                    raise RemoteError(method, answer["error"])
                return answer.get("result")

    def _on_server_message(self, message: dict[str, Any]) -> None:
        if "id" not in message:
            if self.on_notification is not None:
                self.on_notification(message)
        elif message["method"] == "ping":
            self._send(protocol.result_response(message["id"], {}))
        else:  # sampling, roots, elicitation: this client offers none of them
            self._send(protocol.method_not_found(message["id"], str(message["method"])))

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.sock.sendall(protocol.encode(message))
        except OSError as exc:
            self._refused_already()
            raise Lost(f"cannot send: {exc.strerror or exc}") from exc

    def _refused_already(self) -> None:
        """Raise Refused when the shim's refusal is what is left to read: a send fails once it closed."""
        with contextlib.suppress(OSError):
            self.sock.setblocking(False)
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        for line in self.buffer.split(b"\n"):
            with contextlib.suppress(protocol.ProtocolError):
                if (refusal := protocol.refusal(protocol.decode(line))) is not None:
                    raise Refused(refusal)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise
            except OSError as exc:
                raise Lost(exc.strerror or str(exc)) from exc
            if not chunk:
                raise Lost("the shim closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return protocol.decode(line)
        except protocol.ProtocolError as exc:
            raise Lost(f"unreadable answer: {exc}") from exc


def transient(exc: BaseException) -> bool:
    """Worth another try: the connection dropped, or the shim said so (the server is restarting)."""
    if isinstance(exc, RemoteError):
        return exc.retryable
    return isinstance(exc, Lost | ConnectionRefusedError)


def retry_delay(attempt: int) -> float:
    """The wait before retry `attempt` (1, 2, ...): RETRY_BASE doubled each time up to RETRY_MAX, plus up
    to a quarter of itself, at random."""
    return min(RETRY_BASE * 2.0 ** (attempt - 1), RETRY_MAX) * (1 + 0.25 * jitter())


def with_retries(
    action: Callable[[], T],
    retries: int,
    deadline: float,
    on_retry: Callable[[BaseException, int, float], None] | None = None,
) -> T:
    """Run `action`; after a transient failure wait (exponential, with jitter) and try again, at most
    `retries` times and never past `deadline`."""
    attempt = 0
    while True:
        try:
            return action()
        except Exception as exc:
            attempt += 1
            delay = retry_delay(attempt)
            if not transient(exc) or attempt > retries or time.monotonic() + delay >= deadline:
                raise
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            time.sleep(delay)
