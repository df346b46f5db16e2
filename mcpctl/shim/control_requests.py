"""The shim's answers to control requests (`mcpctl/status`, `stop`, `retry`, `update`) on its socket."""

from __future__ import annotations

from typing import Any, Protocol

from mcpctl import protocol
from mcpctl.contract import Control, Spec, updated


class Controlled(Protocol):
    """What a control request can ask of the shim."""

    spec: Spec

    def status(self) -> dict[str, Any]:
        """The record, fresh."""
        ...

    def stop(self) -> None:
        """End the server's tree and exit, at the loop's next step."""
        ...

    def retry_now(self) -> int:
        """In backoff, start again now as a person's start; the attempt that will run (or runs)."""
        ...

    def apply(self, spec: Spec, changed: list[str]) -> None:
        """Take settings that need no restart; the server keeps running."""
        ...


def answer(shim: Controlled, message: dict[str, Any]) -> dict[str, Any]:
    """The JSON-RPC response to one control request."""
    method, request_id = message.get("method"), message.get("id")
    if method == Control.STATUS:
        return _result(request_id, shim.status())
    if method == Control.STOP:
        shim.stop()
        return _result(request_id, {"stopping": True})
    if method == Control.RETRY:  # `start --force` during a backoff
        return _result(request_id, {"attempt": shim.retry_now()})
    if method == Control.UPDATE:  # `mcpctl apply`: settings that need no restart
        try:
            spec, changed = updated(shim.spec, message.get("params"))
        except ValueError as exc:
            return protocol.error_response(request_id, -32602, f"invalid settings: {exc}")
        shim.apply(spec, changed)
        return _result(request_id, {"config_hash": spec.config_hash, "updated": changed})
    return protocol.method_not_found(request_id, str(method))


def _result(request_id: object, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}
