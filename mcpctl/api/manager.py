"""`mcpctl.Manager`: what the CLI does, for a Python application: the same core, the same results as data.

Importing this module is cheap: the mcp SDK (and anyio) load when a session is first opened.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from mcpctl.errors import ErrorType, MCPCtlError, UsageError
from mcpctl.paths import Paths, chosen_home, find_config

if TYPE_CHECKING:
    from mcp.client.session import ClientSession
    from mcp.types import CallToolResult

    from mcpctl.config.model import Config, ServerConfig
    from mcpctl.control.controller import Controller
    from mcpctl.control.observe import Observation
    from mcpctl.control.projects import Target
    from mcpctl.control.results import StartResult, StopResult
    from mcpctl.health import Verdict
    from mcpctl.logfile import Line

PathLike = str | os.PathLike[str]
P = ParamSpec("P")
T = TypeVar("T")


def _blocking(call: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """`call` for code that is not async, with the same parameters: it runs in an event loop of its own
    (so never from inside a running one)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        import anyio

        return anyio.run(partial(call, *args, **kwargs))

    run.__name__ = f"{call.__name__}_sync"
    run.__doc__ = f"`{call.__name__}` for code that is not async (it runs its own event loop; not from inside one)."
    return run


class Manager:
    """Start, stop and watch the servers of one config and state dir, and use them through their shims.

    The config is found as the CLI finds it: `config`, else $MCPCTL_CONFIG, else mcpctl.toml in `directory`
    (default: the working directory) or a folder above it, else the user config dir; the state dir is
    `home`, else $MCPCTL_HOME, else the config's `home`, else the platform's. The servers are those of the
    config's project, or of `project` (a project name, as `--project`: its servers' records name the
    config file that started them). The config file is read again by every call, as every CLI command
    reads it. Methods that wait (start, stop, restart, ensure_running) block: from async code, run them
    in a thread (`await anyio.to_thread.run_sync(manager.restart, "name")`).
    """

    def __init__(
        self,
        config: PathLike | None = None,
        home: PathLike | None = None,
        project: str | None = None,
        directory: PathLike | None = None,
    ) -> None:
        from mcpctl.control import projects

        self.home = chosen_home(os.fspath(home) if home is not None else None)
        self.project, _names = projects.split([], project)  # a project name, checked now (UsageError)
        explicit = os.fspath(config) if config is not None else None
        self.config_path: Path | None = find_config(explicit, Path(directory) if directory is not None else None)
        self._explicit = explicit is not None  # `config=` is the caller's choice, as -f is (config/trust.py)

    # -- lifecycle, as the CLI's commands (no names: every server) ---------------------------------

    def start(
        self, *names: str, wait: bool = True, force: bool = False, timeout: float | None = None
    ) -> list[StartResult]:
        """Start each server unless it runs; a failed start is a result with `.error`, not an exception.
        `timeout` bounds this call's wait for ready, never the servers' own startup_timeout."""
        config = self.config()
        servers = config.select(list(names), not names)
        return self._controller(config).start(servers, wait=wait, force=force, timeout=timeout)

    def stop(self, *names: str, timeout: float | None = None) -> list[StopResult]:
        """Stop servers with their whole process tree (also servers no longer in the config)."""
        from mcpctl.control.controller import with_timeouts

        t = self._target(required=False, lenient=True)
        servers = with_timeouts(self._known(t.config, names, t.paths), stop=timeout)
        return self._controller(t.config, t.paths).stop(servers)

    def restart(self, *names: str, force: bool = False, timeout: float | None = None) -> list[StartResult]:
        config = self.config()
        servers = config.select(list(names), not names)
        return self._controller(config).restart(servers, force=force, timeout=timeout)

    def status(self, *names: str) -> list[Observation]:
        """Each server's state, reconciled with the kernel (what `mcpctl status --json` prints)."""
        t = self._target(required=False, lenient=True)
        return self._controller(t.config, t.paths).status([s.name for s in self._known(t.config, names, t.paths)])

    def check(self, *names: str) -> list[Verdict]:
        """`mcpctl check`: ok, unhealthy or not_running for each server; starts nothing, takes no lock."""
        from mcpctl.health import verdict

        config = self.config(required=False)
        found = self._controller(config).status([s.name for s in self._known(config, names)], repair=False)
        return [verdict(o.name, o.state, o.record.health, o.record.alerts) for o in found]

    def logs(self, name: str, lines: int | None = None, since: float | None = None) -> list[Line]:
        """The last `lines` lines of NAME's log (default 20), across rotations; with `since` (seconds), the
        last `lines` of those written in the last `since` seconds, all of them when `lines` is not given
        (as `mcpctl logs -n N --since T`)."""
        from mcpctl import backlog, logfile

        self._known(self.config(required=False), (name,))
        threshold = None if since is None else time.time() - since
        count = backlog.count(lines, threshold, backlog.LOG_LINES)
        return logfile.tail(self.paths.log_file(name), -1 if count is None else count, threshold)

    def events(self, name: str, lines: int | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """NAME's lifecycle events, oldest first, as `mcpctl events --json` prints them: the last `lines`
        (default 50); with `since` (seconds), the last `lines` of the last `since` seconds' events, all of
        them when `lines` is not given (as `mcpctl events -n N --since T`)."""
        from mcpctl import backlog
        from mcpctl.events import read_events

        self._known(self.config(required=False), (name,))
        threshold = None if since is None else time.time() - since
        found = [
            {"server": name, **event}
            for event in read_events(self.paths.events_file(name))
            if threshold is None or float(event.get("ts", 0)) >= threshold
        ]
        return backlog.last(found, backlog.count(lines, threshold, backlog.EVENT_LINES))

    def ensure_running(self, name: str, timeout: float | None = None) -> Observation:
        """Start NAME unless it runs, and wait until it is ready; the MCPCtlError of why not, if it is not.
        Safe from many threads and processes at once: they share one server."""
        (result,) = self.start(name, timeout=timeout)
        if result.error is not None:
            raise MCPCtlError.from_failure(result.error)
        return result.observation

    # -- sessions and tool calls ---------------------------------------------------------------

    @asynccontextmanager
    async def session(
        self, name: str, *, start: bool = True, read_timeout: float | None = None, **options: Any
    ) -> AsyncIterator[ClientSession]:
        """An initialized `mcp.ClientSession` on NAME's shared session, through its shim (no new process).

        The server is started first unless `start=False` (then NotRunningError). The session outlives its
        shim: after a restart, or a stop and a start, the next request goes to the new one (requests in
        flight at that moment fail with a retryable ConnectionLostError). A shim that died is replaced by
        the next request; a server a person stopped, or whose restart policy gave up, is not started
        again: requests fail with NotRunningError (or that failure) until someone starts it. `options`
        go to ClientSession (callbacks, client_info)."""
        from mcpctl.api.session import Dialer, open_session, unwrapped

        dial = Dialer(self.paths, name, self.ensure_running if start else None)
        try:
            async with open_session(dial, read_timeout, options) as session:
                yield session
        except BaseExceptionGroup as group:
            raise unwrapped(group) from None

    async def call_tool(
        self,
        name: str,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        retries: int = 3,
        timeout: float = 60.0,
        start: bool = True,
    ) -> CallToolResult:
        """Call one tool on a session of its own, with the CLI's retry rules: a lost connection and the
        shim's "not now" answers are tried again (at most `retries` times, with backoff, within `timeout`
        seconds in all); a tool error (ToolError, with `.result`), a failed start or a usage error is not,
        and neither is a call lost in flight (the server went away before it answered: the tool may have
        run) unless the tool is marked read-only or idempotent."""
        import anyio

        if retries < 0 or not timeout > 0:
            raise UsageError("retries must be 0 or more and timeout a positive number of seconds")
        try:
            with anyio.fail_after(timeout):
                return await self._retrying(name, tool, dict(arguments or {}), retries, start)
        except TimeoutError:
            raise MCPCtlError.of(ErrorType.TIMEOUT, timeout=timeout, detail=f"calling {name} {tool}") from None

    call_tool_sync = _blocking(call_tool)

    async def _retrying(
        self, name: str, tool: str, arguments: dict[str, Any], retries: int, start: bool
    ) -> CallToolResult:
        import logging  # lazy: `from mcpctl import Manager` stays as cheap as the CLI's start

        import anyio

        from mcpctl.api import errors
        from mcpctl.control.shim_client import retry_delay

        in_flight: MCPCtlError | None = None  # a call lost after it was sent: repeated only if repeatable
        for attempt in range(retries + 1):
            try:
                return await self._call_once(name, tool, arguments, start, in_flight)
            except _NotRepeated as lost:
                raise lost.error from None
            except (_LostInFlight, MCPCtlError) as caught:
                error = caught.error if isinstance(caught, _LostInFlight) else caught
                in_flight = error if isinstance(caught, _LostInFlight) else in_flight
                if not errors.transient(error) or attempt == retries:
                    raise error from None
                delay = retry_delay(attempt + 1)
                said = f"{name}: {error.message}; retry {attempt + 1} of {retries} in {delay:.1f}s"
                if isinstance(caught, _LostInFlight):  # decided once the server's list says what the tool is
                    said += f" if {tool} is marked read-only or idempotent"
                logging.getLogger("mcpctl").warning(said)
                await anyio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _call_once(
        self, name: str, tool: str, arguments: dict[str, Any], start: bool, in_flight: MCPCtlError | None
    ) -> CallToolResult:
        from mcp.shared.exceptions import MCPError

        from mcpctl.api import errors
        from mcpctl.control import toolcall

        async with self.session(name, start=start) as session:
            if in_flight is not None and not toolcall.repeatable(await _annotations(session, tool)):
                raise _NotRepeated(toolcall.lost_in_flight(name, tool, in_flight.message))
            try:
                result = await session.call_tool(tool, arguments)
            except MCPError as exc:  # the server's own error answer (the shim's are MCPCtlErrors already)
                raise errors.from_sdk(name, "tools/call", exc) from None
            except MCPCtlError as error:
                if error.type == ErrorType.CONNECTION_LOST:
                    raise _LostInFlight(error) from None
                raise
        if result.is_error:
            raise errors.tool_failed(name, tool, result)
        return result

    # -- the config and the core ---------------------------------------------------------------

    def config(self, required: bool = True) -> Config:
        """The project's config as the file says now (an empty one when there is none and it is not `required`)."""
        return self._target(required).config

    @property
    def paths(self) -> Paths:
        """The state dir's files of the project the manager acts on."""
        return self._target(required=False).paths

    def _target(self, required: bool, lenient: bool = False) -> Target:
        """The project's paths and config, each config file (and its env files) judged by the trust rules
        before it is used, as the CLI judges them: a file someone else could have written is refused.
        `lenient` (stop, status, as in the CLI): a config file that does not load, or that the trust rules
        refuse (unread), gives the project its records name, with no server configured (`projects.recorded`)."""
        from mcpctl.config.model import no_config_found
        from mcpctl.control import projects

        target = projects.target(
            self._found, self.home, self.project, [], required, lenient=lenient, explicit=self._explicit
        )
        if required and target.config.path is None:
            raise no_config_found()
        return target

    def _found(self) -> Config | None:
        """The config file found at construction, judged, loaded, and its env files judged."""
        from mcpctl.config.load import load
        from mcpctl.config.trust import check_config, check_env_files

        if self.config_path is None:
            return None
        check_config(self.config_path, explicit=self._explicit, trust=False)
        found = load(self.config_path)
        check_env_files(found, explicit=self._explicit, trust=False)
        return found

    def _controller(self, config: Config, paths: Paths | None = None) -> Controller:
        from mcpctl.control.controller import Controller

        return Controller(paths or self.paths, config)

    def _known(self, config: Config, names: tuple[str, ...], paths: Paths | None = None) -> list[ServerConfig]:
        return config.known((paths or self.paths).known_servers(), list(names), not names)


class _LostInFlight(Exception):
    """A call lost after it was sent (the server went away before it answered): the tool may have run."""

    def __init__(self, error: MCPCtlError) -> None:
        super().__init__(error.message)
        self.error = error


class _NotRepeated(_LostInFlight):
    """A call lost in flight whose tool is not marked read-only or idempotent: said, not sent again."""


async def _annotations(session: ClientSession, tool: str) -> dict[str, Any] | None:
    """The annotations `tool` declares in the server's list (None: none, or no such tool)."""
    from mcp.types import PaginatedRequestParams

    cursor: str | None = None
    while True:
        listed = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        for found in listed.tools:
            if found.name == tool:
                return found.annotations.model_dump(by_alias=True) if found.annotations else None
        cursor = listed.next_cursor
        if not cursor:
            return None
