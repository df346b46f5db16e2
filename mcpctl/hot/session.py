"""The bodies of connect, tools, call and ping (shared by the typer commands and the hot path; each
returns its exit code), and the session they use through the server's shim.

They speak JSON-RPC to the shim's socket directly (never the mcp SDK) and start the server first
when it is not running, unless --no-start.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable

from mcpctl.constants import CONTROL_SECRETS, CONTROL_TIMEOUT, ExitCode
from mcpctl.errors import ErrorType, Failure, MCPCtlError, UsageError
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.hot.context import Globals
from mcpctl.i18n import _
from mcpctl.lean import Record, dataclass

if TYPE_CHECKING:
    from mcpctl.paths import Paths


@dataclass(frozen=True)
class Options(Record):
    """What every session command is given besides the server: --no-start, --timeout, --retries, --json."""

    no_start: bool
    timeout: float
    retries: int
    as_json: bool = False
    unmasked: bool = False


def connect(g: Globals, name: str, no_start: bool, drain: bool) -> int:
    from mcpctl.control.bridge import Bridge
    from mcpctl.control.pump import refuse, watch_parent

    watch_parent()
    try:
        sock = _connect(g, name, no_start, time.monotonic() + 120.0)
    except MCPCtlError as failed:  # the client must hear why too: most clients hide our stderr
        refuse(Failure(failed.type, failed.message, failed.hint))
        raise
    reconnect = lambda may_start: _reconnect(g, name, no_start or not may_start)  # noqa: E731
    Bridge(name, sock, reconnect, drain).run()
    return ExitCode.OK


def tools(g: Globals, name: str, o: Options) -> int:
    from mcpctl.control import toolcall
    from mcpctl.redaction import mask_data
    from mcpctl.render import output as render

    mask = _masking(g, name, o.unmasked)
    found = mask_data(mask, _with_session(g, name, o, _list_tools, mask))
    if o.as_json:
        render.emit_json({"server": name, "tools": found})
        return ExitCode.OK
    rows = [[str(t.get("name")), _first_line(t.get("description")), toolcall.summary(t)] for t in found]
    render.table(["TOOL", "DESCRIPTION", "ARGUMENTS"], rows)
    return ExitCode.OK


def call(g: Globals, name: str, tool: str, pairs: list[str], args_json: str | None, o: Options) -> int:
    from mcpctl.control import toolcall
    from mcpctl.control.shim_client import Lost, RemoteError
    from mcpctl.redaction import mask_data
    from mcpctl.render import output as render

    mask = _masking(g, name, o.unmasked)

    def act(session: Any, deadline: float) -> dict[str, Any]:
        by_name = {str(t.get("name")): t for t in _list_tools(session, deadline)}
        if tool not in by_name:
            known = ", ".join(sorted(by_name)) or _("none")
            no_tool = _("{name} has no tool {tool!r} (it has: {known})").format(name=name, tool=tool, known=known)
            raise UsageError(no_tool, _(toolcall.SEE_TOOLS).format(server=name))
        arguments = toolcall.arguments(name, by_name[tool], pairs, args_json)
        try:
            result = session.request("tools/call", {"name": tool, "arguments": arguments}, deadline)
        except (Lost, RemoteError) as exc:  # the call was sent: lost now, it may have run
            lost = isinstance(exc, Lost) or exc.mcpctl_type == ErrorType.CONNECTION_LOST
            if lost and not toolcall.repeatable(by_name[tool].get("annotations")):
                raise toolcall.lost_in_flight(name, tool, mask(_describe(exc))) from None
            raise
        return result if isinstance(result, dict) else {}

    result = mask_data(mask, _with_session(g, name, o, act, mask))
    if o.as_json:
        render.emit_json({"server": name, "tool": tool, "result": result})
    else:
        text = toolcall.result_text(result)
        (sys.stderr if result.get("isError") else sys.stdout).write(text + ("\n" if text else ""))
    return ExitCode.TOOL_ERROR if result.get("isError") else ExitCode.OK


def ping(g: Globals, name: str, o: Options) -> int:
    def act(session: Any, deadline: float) -> float:
        started = time.perf_counter()
        session.ping(deadline)
        return (time.perf_counter() - started) * 1000

    latency = _with_session(g, name, o, act)
    if o.as_json:
        from mcpctl.render import output as render

        render.emit_json({"server": name, "ok": True, "latency_ms": round(latency, 3)})
    else:
        sys.stdout.write(_("{name}: pong in {latency:.1f} ms").format(name=name, latency=latency) + "\n")
    return ExitCode.OK


# -- the session ---------------------------------------------------------------------------------


def _masking(g: Globals, name: str, unmasked: bool) -> Callable[[str], str]:
    """What masks NAME's secrets (its config's env values, env files, secret-named shell variables) in what
    the server sends back: tool results and errors carry them as often as its stderr does. A running server
    has the values its start resolved, which this shell may not resolve again (a variable unset since): its
    shim says them; those resolved now are masked too (the values a start by this call would give it)."""
    from mcpctl.config import env_rules
    from mcpctl.config.environment import resolve
    from mcpctl.redaction import Redactor

    t = g.target([name])  # PROJECT/NAME: that project's config, not the current one
    server = t.config.servers.get(t.names[0])
    if unmasked or server is None:
        return str
    rules = env_rules.rules_for(server, t.config, env_rules.stored(t.paths))
    now = resolve(server, t.config.base_dir, os.environ, rules).secrets
    return Redactor(now + _running_secrets(t.paths, t.names[0]))


def _running_secrets(paths: Paths, name: str) -> list[str]:
    """The secrets NAME's shim runs its server with; none when no shim answers (none runs, or one too old)."""
    from mcpctl import protocol

    try:
        answer = protocol.call(paths.control_socket(name), CONTROL_SECRETS, timeout=CONTROL_TIMEOUT)
    except (OSError, protocol.ProtocolError):  # TimeoutError is an OSError
        return []
    found = answer.get("secrets") if isinstance(answer, dict) else None
    return [s for s in found if isinstance(s, str)] if isinstance(found, list) else []


def _with_session(g: Globals, name: str, o: Options, act: Any, mask: Callable[[str], str] = str) -> Any:
    """Open a session (starting the server if need be), run `act(session, deadline)`, retrying
    transient failures; every failure becomes an MCPCtlError of the taxonomy, masked by `mask`."""
    from mcpctl.control.shim_client import Lost, Refused, RemoteError, Session, with_retries

    no_start, timeout, retries = o.no_start, o.timeout, o.retries
    deadline = time.monotonic() + timeout

    def attempt() -> Any:
        with Session(_connect(g, name, no_start, deadline)) as session:
            session.open(deadline)  # in the era the server speaks
            return act(session, deadline)

    def retrying(exc: BaseException, number: int, delay: float) -> None:
        sys.stderr.write(f"mcpctl: {name}: {_describe(exc)}; retry {number} of {retries} in {delay:.1f}s\n")

    try:
        return with_retries(attempt, retries, deadline, retrying)
    except RemoteError as exc:
        error = _remote_failure(name, exc)
        error.message, error.hint = mask(error.message), mask(error.hint)
        raise error from None
    except Refused as exc:  # past max_clients: what the shim said, not the closed socket
        raise MCPCtlError.from_failure(exc.failure) from None
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


def _reconnect(g: Globals, name: str, no_start: bool) -> socket.socket:
    """NAME's next shim, for a bridge whose shim went away: OSError while none listens yet; a server that
    died is started again (unless `no_start`); one a person stopped is not (MCPCtlError: not running)."""
    from mcpctl.state import left_down, lock_holder

    t = g.target([name])  # PROJECT/NAME (what `client setup` writes): that project's files
    paths, bare = t.paths, t.names[0]
    try:
        return _open(paths.socket(bare))
    except OSError:
        pass
    if lock_holder(paths.instance_lock(bare)) is not None:
        raise OSError(f"the shim of {name} is not listening yet")
    down = left_down(paths.state_file(bare), name)  # as the last shim left it: one that died never said so
    if down is not None:
        raise down
    if no_start:
        raise MCPCtlError.of(ErrorType.NOT_RUNNING, name=name)
    return _connect(g, name, False, time.monotonic() + 120.0)


def _open(path: Any) -> socket.socket:
    from mcpctl.privdir import own_socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(own_socket(path)))
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
    if result.error is None:
        raise MCPCtlError.of(ErrorType.INTERNAL, detail=f"{name} did not start ({result.outcome})")
    raise MCPCtlError.from_failure(result.error)


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
