"""MCP over streamable HTTP with the stdlib's http.client: the handshake, and one message's exchange."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from mcpctl.hints import Any
from mcpctl.protocol import (
    ProtocolError,
    encode,
    initialize_outcome,
    initialize_request,
    initialized_notification,
)

SESSION_HEADER = "Mcp-Session-Id"


def handshake(url: str, timeout: float, headers: Mapping[str, str] | None = None) -> tuple[dict[str, Any], str | None]:
    """POST initialize, then notifications/initialized: the initialize result and the session id,
    or OSError/ProtocolError. `headers` (the config's, resolved) go with every request."""
    exchange = Exchange(url, None, timeout, headers)
    reply = next((m for m in exchange.send(initialize_request()) if "id" in m and "method" not in m), None)
    if reply is None:
        raise ProtocolError("the server answered initialize with no JSON-RPC response")
    result = initialize_outcome(reply)
    for _ in Exchange(url, exchange.session, timeout, headers).send(initialized_notification()):
        pass
    return result, exchange.session


class Exchange:
    """One POST of one message; the messages that come back (a JSON body or an SSE stream) are
    yielded as they arrive, so progress notifications are not held until the answer."""

    def __init__(self, url: str, session: str | None, timeout: float, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.session = session
        self.timeout = timeout

    def send(self, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
        parts = urlsplit(self.url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.netloc, timeout=self.timeout)
        headers = {**self.headers, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.session:
            headers[SESSION_HEADER] = self.session
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("POST", target, encode(message), headers)
            response = conn.getresponse()
            self.session = response.getheader(SESSION_HEADER) or self.session
            if response.status >= 400:
                raise ProtocolError(f"HTTP {response.status} {response.reason} from {self.url}")
            if (response.getheader("Content-Type") or "").startswith("text/event-stream"):
                yield from _events(response)
            else:
                yield from _messages(response.read())
        finally:
            conn.close()


def _events(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    data: list[bytes] = []
    while True:
        line = response.readline()
        if not line or not line.strip():  # the end of the stream, or of one event
            if data:
                yield from _messages(b"\n".join(data))
                data = []
            if not line:
                return
        elif line.startswith(b"data:"):
            data.append(line[5:].strip())


def _messages(body: bytes) -> Iterator[dict[str, Any]]:
    if not body.strip():
        return
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON from the server: {body[:120]!r}") from exc
    for message in decoded if isinstance(decoded, list) else [decoded]:
        if isinstance(message, dict):
            yield message
