"""Fakes around the multiplexer: client connections and the server's inbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcpctl import protocol
from mcpctl.errors import ErrorType, Failure
from mcpctl.shim.mux import Multiplexer, Peer
from tests.unit.fakes import FakeClock

Message = dict[str, Any]
WAIT_LIMIT = 30.0
SESSION_VERSION = "2025-06-18"
INIT_RESULT: Message = {
    "protocolVersion": SESSION_VERSION,
    "capabilities": {"tools": {}},
    "serverInfo": {"name": "fixture", "version": "1"},
}
LOST = Failure.of(ErrorType.CONNECTION_LOST, name="demo", detail="the server exited")


@dataclass
class FakeConnection:
    """A client's connection that keeps what it was sent; past `limit` messages it drops itself, as a
    real connection does when its outbox overflows."""

    number: int
    on_hangup: Callable[[FakeConnection], None]
    limit: int | None = None
    closed: bool = False
    finished: bool = False
    flushed: bool = False
    sent: list[Message] = field(default_factory=list)

    def send(self, message: Message) -> None:
        if self.limit is not None and len(self.sent) >= self.limit:
            self.close()
            return
        self.sent.append(message)

    def finish(self) -> None:
        self.finished = True

    def flush_blocking(self, timeout: float) -> None:
        self.flushed = True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.on_hangup(self)

    def take(self) -> list[Message]:
        sent, self.sent = self.sent, []
        return sent


class Rig:
    """A multiplexer and everything around it: clients and the server's inbox."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.upstream: list[Message] = []
        self.mux = Multiplexer("demo", wait_limit=WAIT_LIMIT, clock=self.clock.monotonic)
        self.numbers = iter(range(1, 1000))

    def attach(self) -> None:
        self.mux.attach(self.upstream.append, INIT_RESULT)

    def client(self, capabilities: Message | None = None, limit: int | None = None) -> tuple[Peer, FakeConnection]:
        conn = FakeConnection(next(self.numbers), self.mux.hangup, limit)
        peer = self.mux.add(conn)
        if capabilities is not None:
            before = len(self.upstream)
            self.mux.from_client(peer, request("init", "initialize", capabilities=capabilities))
            conn.take()
            del self.upstream[before:]  # a roots client's list_changed (its own test checks it)
        return peer, conn

    def sent_up(self) -> list[Message]:
        sent, self.upstream[:] = list(self.upstream), []
        return sent

    def answer(self, upstream: Message, result: Any = "done") -> bool:
        return self.mux.from_upstream(protocol.result_response(upstream["id"], result))


def request(request_id: Any, method: str, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def notification(method: str, **params: Any) -> Message:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def error_type(message: Message) -> str:
    return str(message["error"]["data"]["type"])
