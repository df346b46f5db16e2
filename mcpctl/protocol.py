"""The few JSON-RPC messages mcpctl speaks itself, without the mcp SDK (its import costs ~0.6 s)."""

from __future__ import annotations

import json
import re
import selectors
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from mcpctl import __version__
from mcpctl.constants import MCP_PROTOCOL_VERSION
from mcpctl.errors import ErrorType, Failure
from mcpctl.hints import Any
from mcpctl.privdir import own_socket

INIT_ID = "mcpctl-init"
# Protocol versions with the `initialize` handshake (dates compare as strings).
KNOWN_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", MCP_PROTOCOL_VERSION)
# What a server may answer to our initialize: a known legacy version, or the modern era's first (a server
# may name the version it speaks); anything else (a made-up date, a number, null) is not MCP we can speak.
ANSWERABLE_VERSIONS = (*KNOWN_VERSIONS, "2026-07-28")
MAX_LINE = 16 * 1024 * 1024  # a line of a server's log output (stderr) is cut past this
# What the shim's handshake declares it can answer: everything a client of its socket may declare, since
# servers decide what to offer from this one handshake and the shim cannot know its future clients.
# The 2025-11-25 spellings; older servers read `elicitation` (form only) and ignore `url`.
CLIENT_CAPABILITIES: dict[str, Any] = {
    "sampling": {},
    "elicitation": {"form": {}, "url": {}},
    "roots": {"listChanged": True},
}

# JSON-RPC error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
# mcpctl's own errors (connection lost, not ready, ...) use this code; `data` holds type, hint, retryable.
MCPCTL_ERROR = -32000


# Where a message's id is when only its ends are known: first (`{"jsonrpc":"2.0","id":1,...`) or last
# (`{"result":...,"id":1}`), and whether it is a request (its `method` comes first, or right after the id).
# Compiled on first use (`re` caches them): most processes never meet such a message.
_ID = rb'(-?\d+|"[^"\\]{0,200}")'
_JSONRPC = rb'(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?'
_HEAD_ID = rb"\A\s*\{\s*" + _JSONRPC + rb'"id"\s*:\s*' + _ID + rb"\s*,"
_TAIL_ID = rb'[,{]\s*"id"\s*:\s*' + _ID + rb'\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?\}\s*\Z'
_REQUEST = rb"\A\s*\{\s*" + _JSONRPC + rb'(?:"id"\s*:\s*' + _ID + rb'\s*,\s*)?"method"\s*:'


class ProtocolError(Exception):
    """A peer sent something that is not the JSON-RPC we expect."""


class UnknownVersion(ProtocolError):
    """The server's initialize answer names a protocol version mcpctl does not speak."""

    hint = "the server speaks an MCP version mcpctl does not know: upgrade mcpctl, or pin the server to an older one"


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes, redact: Callable[[str], str] | None = None) -> dict[str, Any]:
    """One JSON-RPC message; a line that is not one is a ProtocolError showing its start, masked by
    `redact` before it is cut or escaped (a secret must not survive as a piece or as an escape)."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # "[[[[..." nests past the recursion limit
        raise ProtocolError(f"not JSON: {_preview(line, redact)}") from exc
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise ProtocolError(f"not a JSON-RPC 2.0 message: {_preview(line, redact)}")
    return message


def _preview(line: bytes, redact: Callable[[str], str] | None, limit: int = 120) -> str:
    text = line.decode("utf-8", "replace").strip()
    if redact is not None:
        text = redact(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def sender_of(head: bytes, tail: bytes) -> tuple[object, bool]:
    """Best effort, for a message too large to parse: its id (None if not found) and whether it is a
    request, from its first and last bytes."""
    found = re.match(_HEAD_ID, head) or re.search(_TAIL_ID, tail)
    request_id = json.loads(found.group(1)) if found else None
    return request_id, re.match(_REQUEST, head) is not None


def too_large(request_id: object, size: int, limit: int, server: str) -> dict[str, Any]:
    """The error for a message past the limit (`size` bytes, of which at most the ends were kept)."""
    message = f"message too large: {size} bytes, past the limit of {limit} bytes (max_message_bytes of {server})"
    hint = f"send less, or raise max_message_bytes of {server} in the config (a restart applies it)"
    return error_response(request_id, INVALID_REQUEST, message, {"size": size, "limit": limit, "hint": hint})


def initialize_request() -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": INIT_ID,
        "method": "initialize",
        "params": {
            "protocolVersion": MCP_PROTOCOL_VERSION,
            "capabilities": CLIENT_CAPABILITIES,
            "clientInfo": {"name": "mcpctl", "version": __version__},
        },
    }


def initialized_notification() -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/initialized"}


def method_not_found(request_id: object, method: str) -> dict[str, Any]:
    return error_response(request_id, METHOD_NOT_FOUND, f"Method not found: {method}")


def error_response(request_id: object, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def failure_response(request_id: object, failure: Failure) -> dict[str, Any]:
    """mcpctl's own error (not the server's) as a JSON-RPC error answer: its type, hint and retryable in `data`."""
    data = {"type": failure.type.value, "hint": failure.hint, "retryable": failure.retryable}
    return error_response(request_id, MCPCTL_ERROR, failure.message, data)


def refusal(message: dict[str, Any]) -> Failure | None:
    """What a shim's refusal of the connection it came on says (past `max_clients`, out of file
    descriptors): mcpctl's own error under id null, the one line the shim sends before it closes. None
    for any other message."""
    error = message.get("error")
    if "id" not in message or message["id"] is not None or not isinstance(error, dict):
        return None
    if error.get("code") != MCPCTL_ERROR:
        return None
    data = error.get("data")
    data = data if isinstance(data, dict) else {}
    try:
        kind = ErrorType(str(data.get("type")))
    except ValueError:  # untyped (an older shim out of descriptors): the server cannot be reached for now
        kind = ErrorType.CONNECTION_LOST
    return Failure(kind, str(error.get("message", "")), str(data.get("hint") or ""))


def result_response(request_id: object, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def initialize_outcome(message: dict[str, Any]) -> dict[str, Any]:
    """The initialize result, or ProtocolError with the server's own error message."""
    if "error" in message:
        error = message["error"] if isinstance(message["error"], dict) else {}
        raise ProtocolError(f"the server refused initialize: {error.get('message', message['error'])}")
    result = message.get("result")
    if not isinstance(result, dict) or "protocolVersion" not in result:
        raise ProtocolError("the initialize answer has no protocolVersion")
    version = result["protocolVersion"]
    if not isinstance(version, str) or version not in ANSWERABLE_VERSIONS:
        known = ", ".join(ANSWERABLE_VERSIONS)
        raise UnknownVersion(f"the initialize answer names protocolVersion {json.dumps(version)}, not one of {known}")
    return result


def call(path: Path, method: str, params: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    """One request to a shim's control socket; OSError when nobody answers, ProtocolError on a bad answer.

    `timeout` bounds the whole call (connect, send and every read together): TimeoutError past it, so a
    shim that is frozen, or trickles its answer, never holds the CLI longer.
    """
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        _until(sock, deadline)
        sock.connect(str(own_socket(path)))
        _until(sock, deadline)
        sock.sendall(_control_request(method, params))
        buffer = b""
        while b"\n" not in buffer:
            _until(sock, deadline)
            chunk = sock.recv(65536)
            if not chunk:
                raise ProtocolError(f"the shim closed the connection before answering {method}")
            buffer += chunk
    result = _answer(buffer, method)
    if isinstance(result, ProtocolError):
        raise result
    return result


class Asking:
    """The same kind of control request sent to many shims' sockets at once, their answers read as they
    come, in this one thread (fifty threads, one a shim, took longer to start than the shims took to
    answer). Each key's result is its answer's result or the exception `call` would raise. `timeout`
    bounds them all together, from the moment they are sent; the caller goes on meanwhile."""

    def __init__(self, calls: Mapping[str, tuple[Path, str]], timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.results: dict[str, Any] = {}
        self.sent: list[str] = []  # the keys whose request went out (a shim listens there)
        self._methods = {key: method for key, (_, method) in calls.items()}
        self._waiting: dict[socket.socket, tuple[str, bytearray]] = {}
        self._selector = selectors.DefaultSelector()
        for key, (path, method) in calls.items():
            own_socket(path)  # a planted one is refused (exit 1), never asked
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:  # a listening socket takes a connection at once; the answer is what takes time
                _until(sock, self.deadline)
                sock.connect(str(path))
                sock.sendall(_control_request(method))
                sock.setblocking(False)
            except OSError as exc:
                sock.close()
                self.results[key] = exc
                continue
            self.sent.append(key)
            self._waiting[sock] = (key, bytearray())
            self._selector.register(sock, selectors.EVENT_READ, sock)

    def __enter__(self) -> Asking:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def answered(self) -> dict[str, Any]:
        """The results in so far, after reading what has arrived without waiting for more."""
        if self._waiting:
            self._read(0)
        return self.results

    def wait(self, keys: Iterable[str]) -> dict[str, Any]:
        """The result of each of `keys`, waiting until the deadline for those not in yet (TimeoutError
        for one that did not answer by then)."""
        keys = list(keys)
        while any(key not in self.results for key in keys) and (remaining := self.deadline - time.monotonic()) > 0:
            self._read(remaining)
        late = TimeoutError("the shim did not answer in time")
        return {key: self.results.get(key, late) for key in keys}

    def close(self) -> None:
        """Hang up on the shims that have not answered."""
        for sock in self._waiting:
            sock.close()
        self._waiting.clear()
        self._selector.close()

    def _read(self, timeout: float) -> None:
        for event, _ in self._selector.select(timeout):
            sock = event.data
            key, buffer = self._waiting[sock]
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                chunk, self.results[key] = b"", exc
            if chunk and b"\n" not in chunk:
                buffer += chunk
                continue
            self._selector.unregister(sock)
            sock.close()
            del self._waiting[sock]
            if chunk:
                self.results[key] = _answer(bytes(buffer + chunk), self._methods[key])
            elif key not in self.results:
                self.results[key] = ProtocolError(
                    f"the shim closed the connection before answering {self._methods[key]}"
                )


def _control_request(method: str, params: dict[str, Any] | None = None) -> bytes:
    return encode({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}})


def _answer(data: bytes, method: str) -> Any:
    """The result in a control answer, or the ProtocolError it amounts to (returned, not raised)."""
    try:
        answer = decode(data.split(b"\n", 1)[0])
    except ProtocolError as exc:
        return exc
    if "error" in answer:
        return ProtocolError(str(answer["error"].get("message", answer["error"])))
    return answer.get("result")


def _until(sock: socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the shim did not answer in time")
    sock.settimeout(remaining)
