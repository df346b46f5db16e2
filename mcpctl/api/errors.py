"""What the SDK raises, as the taxonomy's errors: the shim's own answers keep their type, the rest is mapped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcpctl import protocol
from mcpctl.errors import ErrorType, Failure, MCPCtlError, TimedOutError, ToolError

if TYPE_CHECKING:
    from mcp.shared.exceptions import MCPError
    from mcp.types import CallToolResult

REQUEST_TIMEOUT = -32001  # the SDK's own code for a request whose read timeout passed (never on the wire)
CONNECTION_CLOSED = -32000  # the SDK's own code for a request its closed connection ended (a server may send it)
# What the CLI retries: a lost connection (the server died or was restarted under the request), and the shim's
# "not ready in time" answer. A start that failed, a tool error or a usage error is never tried again.
TRANSIENT = frozenset({ErrorType.CONNECTION_LOST, ErrorType.TIMEOUT})


def transient(error: MCPCtlError) -> bool:
    """Worth another try, by the CLI's rules."""
    return error.type in TRANSIENT and error.retryable


def from_sdk(name: str, method: str, exc: MCPError, closed: bool = False) -> MCPCtlError:
    """An error answer (or the SDK's own timeout error) as an MCPCtlError: mcpctl's own keeps its type, the
    server's own is a ToolError, whatever its code. `closed`: the session had ended, so an error of the
    SDK's CONNECTION_CLOSED code is the SDK's own word that its connection is gone."""
    failure = ours(exc)
    if failure is not None:
        return MCPCtlError.from_failure(failure)
    if closed and exc.code == CONNECTION_CLOSED:
        return MCPCtlError.from_failure(Failure.of(ErrorType.CONNECTION_LOST, name=name, detail=exc.message))
    if exc.code == REQUEST_TIMEOUT:
        return TimedOutError(f"{name} did not answer {method} in time ({exc.message})", "raise the timeout")
    error = ToolError(
        f"{name} answered {method} with error {exc.code}: {exc.message}",
        f"see `mcpctl tools {name}` for its tools and their arguments",
    )
    error.result = exc.data
    return error


def ours(exc: MCPError) -> Failure | None:
    """mcpctl's own answer (the shim's, or the link's for a request a closed socket lost): its code, and its
    type in `data` (`protocol.failure_response`). None for the server's own, which may use the same code
    with no data, or data of its own (the CLI tells them apart the same way: `RemoteError.mcpctl_type`)."""
    data: Any = exc.data
    if exc.code != protocol.MCPCTL_ERROR or not isinstance(data, dict):
        return None
    try:
        ErrorType(str(data.get("type")))
    except ValueError:
        return None
    return Failure.from_json({**data, "message": exc.message})


def tool_failed(name: str, tool: str, result: CallToolResult) -> ToolError:
    """A result with isError set: the tool ran and reported a failure (its text is the message)."""
    texts = [str(getattr(item, "text", "")) for item in result.content if getattr(item, "type", "") == "text"]
    error = ToolError(f"{name} {tool}: {' '.join(texts).strip() or 'the tool reported an error'}")
    error.result = result
    return error
