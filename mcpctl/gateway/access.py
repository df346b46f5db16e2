"""Who may use the gateway: the Host and Origin of each request (DNS-rebinding protection), then its token."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcpctl.config.gateway import is_loopback
from mcpctl.config.model import GatewayConfig
from mcpctl.gateway.metrics import GatewayMetrics
from mcpctl.gateway.tokens import Token, TokenStore
from mcpctl.lean import Record, dataclass

REALM = 'Bearer realm="mcpctl-gateway"'


@dataclass
class Access(Record):
    """Who may use the gateway: Host and Origin checks, bearer tokens."""

    gateway: GatewayConfig
    tokens: TokenStore
    metrics: GatewayMetrics

    def refused_origin(self, request: Request) -> Response | None:
        """403 for a browser page of another origin, or a Host that is not ours (a rebound DNS name)."""
        loopback = is_loopback(self.gateway.host)
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]")
        if loopback and host and not is_loopback(host):
            return _refuse(403, f"Host {host!r} is not this gateway's (it listens on loopback)")
        origin = request.headers.get("origin")
        if origin is None or origin in self.gateway.allowed_origins:
            return None
        origin_host = urlsplit(origin).hostname or ""
        if loopback and is_loopback(origin_host):
            return None
        self.metrics.auth_failures.labels("origin").inc()
        return _refuse(403, f"Origin {origin!r} is not allowed (add it to [gateway] allowed_origins)")

    def authenticate(self, request: Request) -> tuple[Token | None, Response | None]:
        """The request's token; or the 401 that answers it (no token, unknown, expired, revoked)."""
        header = request.headers.get("authorization") or ""
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            self.metrics.auth_failures.labels("missing").inc()
            return None, _refuse(401, "a bearer token is required (`mcpctl token create NAME`)", REALM)
        token, why = self.tokens.verify(presented.strip())
        if token is None:
            self.metrics.auth_failures.labels(why).inc()
            challenge = f'{REALM}, error="invalid_token", error_description="the token is {why}"'
            return None, _refuse(401, f"the token is {why}", challenge)
        return token, None

    def forbidden(self, what: str) -> Response:
        self.metrics.auth_failures.labels("scope").inc()
        return _refuse(403, f"this token may not use {what}")


def _refuse(status: int, text: str, challenge: str | None = None) -> Response:
    headers = {"WWW-Authenticate": challenge} if challenge else None
    return JSONResponse({"error": text}, status_code=status, headers=headers)
