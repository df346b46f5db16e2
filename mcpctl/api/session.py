"""A Manager session: an initialized `mcp.ClientSession` on a server's shared session, through its shim."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ByteStream
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError

from mcpctl.api import errors
from mcpctl.api.link import linked
from mcpctl.errors import ErrorType, MCPCtlError
from mcpctl.paths import Paths
from mcpctl.state import left_down, lock_holder

if TYPE_CHECKING:
    from mcpctl.control.observe import Observation

BOOT_WAIT = 10.0  # seconds to wait for the socket of a shim that holds its lock but does not listen yet
_POLL = 0.05


class Dialer:
    """Connections to NAME's shim; the server is started first (`ensure`, in a thread) when none listens,
    but once the session has had a shim, only when that shim died: a server a person stopped, or whose
    restart policy gave up, is left down (as `mcpctl connect` leaves it)."""

    def __init__(self, paths: Paths, name: str, ensure: Callable[[str], Observation] | None) -> None:
        self.paths, self.name, self.ensure = paths, name, ensure
        self.dialed = False

    async def __call__(self, may_start: bool) -> ByteStream:
        path = self.paths.socket(self.name)
        try:
            stream = await anyio.connect_unix(path)
        except OSError:
            pass
        else:
            self.dialed = True
            return stream
        down = left_down(self.paths.state_file(self.name), self.name) if self.dialed else None
        if may_start and self.ensure is not None and down is None:
            await anyio.to_thread.run_sync(self.ensure, self.name)
        elif not await self._booting():  # a shim someone else is starting is taken
            raise down or MCPCtlError.of(ErrorType.NOT_RUNNING, name=self.name)
        try:
            stream = await anyio.connect_unix(path)
        except OSError as exc:
            detail = f"cannot reach its shim at {path}: {exc.strerror or exc}"
            raise MCPCtlError.of(ErrorType.CONNECTION_LOST, name=self.name, detail=detail) from None
        self.dialed = True
        return stream

    async def _booting(self) -> bool:
        """Whether a shim holds the lock and its socket appeared within BOOT_WAIT."""
        with anyio.move_on_after(BOOT_WAIT):
            while lock_holder(self.paths.instance_lock(self.name)) is not None:
                if self.paths.socket(self.name).exists():
                    return True
                await anyio.sleep(_POLL)
        return False


class Session(ClientSession):
    """The session `Manager.session` yields: what the shim answers for itself (not running, connection lost,
    too many clients, a failed start) raises mcpctl's error class on every request, as on `call_tool`; an
    error the server itself answers stays the SDK's MCPError, as any ClientSession raises it."""

    def __init__(self, server: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server = server
        self.ended = False  # past the `async with`: the SDK then answers requests that its connection closed

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        self.ended = True  # first: what the SDK's teardown ends is its own closing, never the server's answer
        return await super().__aexit__(*exc_info)

    async def send_request(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().send_request(request, *args, **kwargs)
        except MCPError as exc:
            # The link answers what a lost socket took with mcpctl's typed error, so while the session lives
            # an error of the same code without that type is the server's own answer.
            if errors.ours(exc) is None and not (self.ended and exc.code == errors.CONNECTION_CLOSED):
                raise
            method = str(getattr(request, "method", "request"))
            raise errors.from_sdk(self.server, method, exc, closed=self.ended) from None


@asynccontextmanager
async def open_session(
    dial: Dialer, read_timeout: float | None, options: dict[str, Any]
) -> AsyncIterator[ClientSession]:
    """Dial (starting the server if `dial` may), link, initialize; every failure is an MCPCtlError."""
    first = await dial(True)
    async with (
        linked(dial.name, dial, first) as (read, write),
        Session(dial.name, read, write, read_timeout_seconds=read_timeout, **options) as session,
    ):
        try:
            await session.initialize()
        except MCPError as exc:  # the server's own answer to initialize
            raise errors.from_sdk(dial.name, "initialize", exc) from None
        yield session


def unwrapped(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one error inside anyio's nested groups (a task group re-raises the body's error in one)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    real = [exc for exc in leaves if not isinstance(exc, anyio.get_cancelled_exc_class())]
    return real[0] if len(real) == 1 else group
