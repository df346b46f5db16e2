"""Reaching the shims: a connection to a server's socket (starting the server first when asked), and
the watch that tells aggregate sessions when a member went down or came back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import field

from mcpctl.config.model import Config
from mcpctl.errors import ErrorType, Failure
from mcpctl.gateway.upstream import Message, Unavailable, Upstream
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths
from mcpctl.state import CorruptState, StateRecord, lock_holder, read_record
from mcpctl.states import ServerState

LOG = logging.getLogger("mcpctl.gateway")
INIT_TIMEOUT = 30.0
WATCH_INTERVAL = 0.5
SERVING = (ServerState.READY, ServerState.UNHEALTHY)


@dataclass
class Members(Record):
    """The configured servers as the gateway sees them."""

    paths: Paths
    config: Config
    up: dict[str, bool] = field(default_factory=dict)
    listeners: list[Callable[[str, bool], None]] = field(default_factory=list)
    _starts: dict[str, asyncio.Lock] = field(default_factory=dict)

    @property
    def auto_start(self) -> bool:
        return self.config.gateway is None or self.config.gateway.auto_start

    def record(self, name: str) -> StateRecord | None:
        """NAME's record when a shim holds its instance lock; None when no shim runs."""
        if lock_holder(self.paths.instance_lock(name)) is None:
            return None
        with contextlib.suppress(CorruptState):
            return read_record(self.paths.state_file(name))
        return None

    def serving(self, name: str) -> bool:
        record = self.record(name)
        return record is not None and record.state in SERVING

    async def open(
        self, name: str, init_params: Message, on_notification: Callable[[Upstream, Message], None], start: bool
    ) -> Upstream:
        """A connection to NAME's shim, initialized with the client's parameters; with `start`, a server that
        is not running is started first (as `mcpctl connect` does). Unavailable when it cannot be reached,
        typed as `connect` types it: not_running, too_many_clients, the start's own failure."""
        limit = self.config.servers[name].max_message_bytes
        upstream = Upstream(name, on_notification, limit)
        try:
            await upstream.open(self.paths.socket(name), init_params, INIT_TIMEOUT)
            return upstream
        except Unavailable as exc:
            if exc.failure.type != ErrorType.NOT_RUNNING or (not start and not self._starting(name)):
                raise
            if not start:
                detail = "its shim is starting or restarting"
                raise Unavailable(Failure.of(ErrorType.CONNECTION_LOST, name=name, detail=detail)) from None
        await self._start(name)
        upstream = Upstream(name, on_notification, limit)
        await upstream.open(self.paths.socket(name), init_params, INIT_TIMEOUT)
        return upstream

    def _starting(self, name: str) -> bool:
        """A shim holds NAME's lock but does not listen (yet, or again): trying again soon can help."""
        return lock_holder(self.paths.instance_lock(name)) is not None

    async def _start(self, name: str) -> None:
        lock = self._starts.setdefault(name, asyncio.Lock())
        async with lock:  # twenty clients of a stopped server start it once
            if self.serving(name):
                return
            LOG.info("%s: not running; starting it for a request", name)
            failure = await asyncio.to_thread(self._start_blocking, name)
            if failure is not None:
                raise Unavailable(failure)

    def _start_blocking(self, name: str) -> Failure | None:
        from mcpctl.control.controller import Controller
        from mcpctl.errors import MCPCtlError

        try:
            (result,) = Controller(self.paths, self.config).start([self.config.servers[name]], timeout=INIT_TIMEOUT)
        except MCPCtlError as exc:
            return Failure(exc.type, exc.message, exc.hint or "")
        if result.ok:
            return None
        return result.error or Failure.of(ErrorType.INTERNAL, detail=f"{name} did not start ({result.outcome})")

    async def watch(self) -> None:
        """Forever: note which servers serve, and tell the listeners of each change."""
        while True:
            for name in self.config.servers:
                now = await asyncio.to_thread(self.serving, name)
                before = self.up.get(name)
                self.up[name] = now
                if before is not None and before != now:
                    LOG.info("%s: %s", name, "serving again" if now else "no longer serving")
                    for listener in list(self.listeners):
                        listener(name, now)
            await asyncio.sleep(WATCH_INTERVAL)
