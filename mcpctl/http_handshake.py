"""The MCP initialize handshake over streamable HTTP, with the stdlib's http.client."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from mcpctl.protocol import (
    ProtocolError,
    decode,
    encode,
    initialize_outcome,
    initialize_request,
    initialized_notification,
)


def handshake(url: str, timeout: float) -> dict[str, Any]:
    """POST initialize, then notifications/initialized; the initialize result, or OSError/ProtocolError."""
    reply, session = _post(url, initialize_request(), None, timeout)
    if reply is None:
        raise ProtocolError("the server answered initialize with no JSON-RPC response")
    result = initialize_outcome(reply)
    _post(url, initialized_notification(), session, timeout)
    return result


def _post(
    url: str, message: dict[str, Any], session: str | None, timeout: float
) -> tuple[dict[str, Any] | None, str | None]:
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.netloc, timeout=timeout)
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
    try:
        path = parts.path or "/"
        conn.request("POST", path + (f"?{parts.query}" if parts.query else ""), encode(message), headers)
        response = conn.getresponse()
        body = response.read()
        session = response.getheader("Mcp-Session-Id") or session
        if response.status >= 400:
            raise ProtocolError(f"HTTP {response.status} {response.reason} from {url}")
        if response.status == 202 or not body.strip():
            return None, session
        if (response.getheader("Content-Type") or "").startswith("text/event-stream"):
            return _first_sse_message(body), session
        return decode(body), session
    finally:
        conn.close()


def _first_sse_message(body: bytes) -> dict[str, Any] | None:
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if data.strip():
            message = json.loads(data)
            if isinstance(message, dict) and "id" in message:
                return message
    return None
