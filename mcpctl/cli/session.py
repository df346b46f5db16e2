"""Commands that use a server's shared MCP session through its shim: connect, tools, call, ping.

They speak JSON-RPC to the shim's socket directly (never the mcp SDK) and start the server first
when it is not running, unless --no-start.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Annotated, Any

import typer

from mcpctl.cli.app import Globals, Json, app, positive_seconds
from mcpctl.constants import ExitCode
from mcpctl.errors import ErrorType, Failure, MCPCtlError, UsageError

Name = Annotated[str, typer.Argument(help="Server name, or PROJECT/NAME.", show_default=False)]
NoStart = Annotated[bool, typer.Option("--no-start", help="Exit 3 instead of starting a server that is not running.")]
Timeout = Annotated[
    float, typer.Option("--timeout", help="Seconds for the whole command, retries included.", callback=positive_seconds)
]
Retries = Annotated[int, typer.Option("--retries", help="Retries after transient failures (connection lost).")]


@app.command()
def connect(ctx: typer.Context, name: Name, no_start: NoStart = False) -> None:
    """Bridge stdin/stdout to NAME's shared session, for any MCP client.

    Use it as the server command in Claude Desktop, Cursor or VS Code:
    {"command": "mcpctl", "args": ["-f", "/path/to/mcpctl.toml", "connect", "PROJECT/NAME"]}
    (`mcpctl client setup` writes these). PROJECT/NAME works from any directory once the server ran.
    Messages about starting go to stderr; stdout carries only MCP. When NAME cannot be started or
    reached, the client's first request is answered with the reason as a JSON-RPC error.
    """
    from mcpctl.control.pump import pump, refuse

    try:
        sock = _connect(ctx.obj, name, no_start, time.monotonic() + 120.0)
    except MCPCtlError as failed:  # the client must hear why too: most clients hide our stderr
        refuse(Failure(failed.type, failed.message, failed.hint))
        raise
    if not pump(sock):
        error = MCPCtlError.of(ErrorType.CONNECTION_LOST, name=name, detail="the shim closed the connection")
        raise error


@app.command()
def tools(
    ctx: typer.Context,
    name: Name,
    no_start: NoStart = False,
    timeout: Timeout = 30.0,
    retries: Retries = 3,
    as_json: Json = False,
) -> None:
    """List NAME's tools with their arguments (* marks a required one)."""
    from mcpctl.control import toolcall
    from mcpctl.render import output as render

    found = _with_session(ctx.obj, name, no_start, timeout, retries, _list_tools)
    if as_json:
        render.emit_json({"server": name, "tools": found})
        return
    rows = [[str(t.get("name")), _first_line(t.get("description")), toolcall.summary(t)] for t in found]
    render.table(["TOOL", "DESCRIPTION", "ARGUMENTS"], rows)


@app.command()
def call(
    ctx: typer.Context,
    name: Name,
    tool: Annotated[str, typer.Argument(help="Tool name (see `mcpctl tools NAME`).", show_default=False)],
    pairs: Annotated[
        list[str] | None, typer.Argument(help="Arguments as key=value, typed by the tool's schema.", show_default=False)
    ] = None,
    args_json: Annotated[str | None, typer.Option("--args", help="Arguments as a JSON object.")] = None,
    no_start: NoStart = False,
    timeout: Timeout = 60.0,
    retries: Retries = 3,
    as_json: Json = False,
) -> None:
    """Call one of NAME's tools and print its result. Exit 10 when the tool reports an error."""
    from mcpctl.control import toolcall
    from mcpctl.render import output as render

    def act(session: Any, deadline: float) -> dict[str, Any]:
        by_name = {str(t.get("name")): t for t in _list_tools(session, deadline)}
        if tool not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise UsageError(f"{name} has no tool {tool!r} (it has: {known})", f"see `mcpctl tools {name}`")
        arguments = toolcall.arguments(name, by_name[tool], pairs or [], args_json)
        result = session.request("tools/call", {"name": tool, "arguments": arguments}, deadline)
        return result if isinstance(result, dict) else {}

    result = _with_session(ctx.obj, name, no_start, timeout, retries, act)
    if as_json:
        render.emit_json({"server": name, "tool": tool, "result": result})
    else:
        text = toolcall.result_text(result)
        (sys.stderr if result.get("isError") else sys.stdout).write(text + ("\n" if text else ""))
    if result.get("isError"):
        raise typer.Exit(ExitCode.TOOL_ERROR)


@app.command()
def ping(
    ctx: typer.Context,
    name: Name,
    no_start: NoStart = False,
    timeout: Timeout = 10.0,
    retries: Retries = 0,
    as_json: Json = False,
) -> None:
    """Send an MCP ping through the shared session and print the round trip."""
    from mcpctl.render import output as render

    def act(session: Any, deadline: float) -> float:
        started = time.perf_counter()
        session.request("ping", None, deadline)
        return (time.perf_counter() - started) * 1000

    latency = _with_session(ctx.obj, name, no_start, timeout, retries, act)
    if as_json:
        render.emit_json({"server": name, "ok": True, "latency_ms": round(latency, 3)})
    else:
        sys.stdout.write(f"{name}: pong in {latency:.1f} ms\n")


# -- the session ---------------------------------------------------------------------------------


def _with_session(g: Globals, name: str, no_start: bool, timeout: float, retries: int, act: Any) -> Any:
    """Open a session (starting the server if need be), run `act(session, deadline)`, retrying
    transient failures; every failure becomes an MCPCtlError of the taxonomy."""
    from mcpctl.control.shim_client import Lost, RemoteError, Session, with_retries

    deadline = time.monotonic() + timeout

    def attempt() -> Any:
        with Session(_connect(g, name, no_start, deadline)) as session:
            session.initialize(deadline)
            return act(session, deadline)

    def retrying(exc: BaseException, number: int, delay: float) -> None:
        sys.stderr.write(f"mcpctl: {name}: {_describe(exc)}; retry {number} of {retries} in {delay:.1f}s\n")

    try:
        return with_retries(attempt, retries, deadline, retrying)
    except RemoteError as exc:
        raise _remote_failure(name, exc) from None
    except Lost as exc:
        raise MCPCtlError.of(ErrorType.CONNECTION_LOST, name=name, detail=str(exc)) from None
    except TimeoutError:
        raise MCPCtlError.of(ErrorType.TIMEOUT, timeout=timeout, detail=f"waiting for {name}") from None


def _connect(g: Globals, name: str, no_start: bool, deadline: float) -> socket.socket:
    """A connection to NAME's (or PROJECT/NAME's) shim; the server is started first when no shim listens."""
    t = g.target([name])
    path = t.paths.socket(t.names[0])
    try:
        return _open(path)
    except OSError:
        pass
    _ensure_started(g, name, no_start, deadline)
    try:
        return _open(path)
    except OSError as exc:
        detail = f"cannot reach its shim at {path}: {exc.strerror or exc}"
        raise MCPCtlError.of(ErrorType.CONNECTION_LOST, name=name, detail=detail) from None


def _open(path: Any) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def _ensure_started(g: Globals, name: str, no_start: bool, deadline: float) -> None:
    from mcpctl.control.controller import Controller

    t = g.target([name], required=True)
    (server,) = t.config.select(t.names, False)
    if no_start:
        raise MCPCtlError.of(ErrorType.NOT_RUNNING, name=name)
    sys.stderr.write(f"mcpctl: starting {name}\n")
    remaining = max(1.0, deadline - time.monotonic())
    (result,) = Controller(t.paths, t.config).start([server], timeout=remaining)  # our wait, not the shim's
    if result.ok:
        return
    failure = result.error
    if failure is None:
        raise MCPCtlError.of(ErrorType.INTERNAL, detail=f"{name} did not start ({result.outcome})")
    error = MCPCtlError(failure.message, failure.hint)
    error.type = failure.type
    raise error


def _list_tools(session: Any, deadline: float) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = session.request("tools/list", {"cursor": cursor} if cursor else None, deadline)
        page = page if isinstance(page, dict) else {}
        found += [t for t in page.get("tools") or [] if isinstance(t, dict)]
        cursor = page.get("nextCursor")
        if not cursor:
            return found


def _remote_failure(name: str, exc: Any) -> MCPCtlError:
    """An error answer as an MCPCtlError: the shim's own keep their type; the server's are tool errors."""
    kind = exc.mcpctl_type
    if kind is not None:
        error = MCPCtlError(exc.message, str(exc.data.get("hint") or ""))
        error.type = kind
        return error
    error = MCPCtlError(
        f"{name} answered {exc.method} with error {exc.code}: {exc.message}",
        f"see `mcpctl tools {name}` for its tools and their arguments",
    )
    error.type = ErrorType.TOOL_ERROR
    return error


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _first_line(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""
