"""`python -m mcpctl.gateway CONFIG`: the gateway process (started detached by `mcpctl gateway start`).

It holds gateway/instance.lock for its whole life, writes gateway/state.json and events.jsonl, reports
`ready` or `failed` as one JSON line on stdout (the CLI waits for it), then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import uvicorn

from mcpctl import legacy
from mcpctl.config.gateway import tls_problems
from mcpctl.config.load import load
from mcpctl.config.model import Config, GatewayConfig, config_error
from mcpctl.constants import ExitCode
from mcpctl.errors import MCPCtlError
from mcpctl.gateway import record
from mcpctl.gateway.access import Access
from mcpctl.gateway.http import Gateway
from mcpctl.gateway.members import Members
from mcpctl.gateway.metrics import GatewayMetrics
from mcpctl.gateway.tokens import TokenStore
from mcpctl.paths import Paths, resolve_home
from mcpctl.state import InstanceLock

LOG = logging.getLogger("mcpctl.gateway")
GRACE = 3  # seconds open requests and streams get at a stop


def report(event: str, **details: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **details}) + "\n")
    sys.stdout.flush()


def failed(exc: MCPCtlError) -> None:
    """A `failed` report with the error's type and every line of it, so the CLI raises what the error is
    (a config that does not load: config_invalid, exit 2) and lists each problem, as its own load would."""
    report("failed", error=exc.message, hint=exc.hint, details=exc.details, type=exc.type)


def _quiet_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def url_of(gateway: GatewayConfig) -> str:
    host = f"[{gateway.host}]" if ":" in gateway.host else gateway.host
    return f"{'https' if gateway.tls_cert else 'http'}://{host}:{gateway.port}"


def bind(gateway: GatewayConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in gateway.host else socket.AF_INET
    # IPPROTO_TCP named, so asyncio sets TCP_NODELAY on each connection (else an answer's headers and body,
    # written apart, wait out the client's delayed ACK: 40 ms a request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((gateway.host, gateway.port))
    except OSError as exc:
        sock.close()
        raise MCPCtlError(f"gateway: cannot listen on {gateway.listen}: {exc.strerror or exc}") from None
    sock.listen(512)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server without its signal capture, which re-raises SIGTERM once serving ends and so
    would kill the process before it writes its final record."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(paths: Paths, config: Config, sock: socket.socket) -> None:
    gateway = config.gateway or GatewayConfig()
    metrics = GatewayMetrics()
    members = Members(paths, config)
    metrics.watch(members)
    access = Access(gateway, TokenStore(paths.gateway_file("tokens.json")), metrics)
    app = Gateway(members, access, metrics)
    settings = uvicorn.Config(
        app.app(),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACE,
        ssl_certfile=config.file_path(gateway.tls_cert),
        ssl_keyfile=config.file_path(gateway.tls_key),
    )
    server = _Server(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    watcher = asyncio.create_task(members.watch())
    sweeper = asyncio.create_task(app.sweep())
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        record.write(paths, state="running", ready_at=time.time())
        record.event(paths, "ready", url=url_of(gateway))
        report("ready", url=url_of(gateway), pid=os.getpid())
        _quiet_stdout()  # the CLI that read the report is gone: later writes must not hit a closed pipe
        LOG.info("serving on %s", url_of(gateway))
    try:
        await serving
    finally:
        watcher.cancel()
        sweeper.cancel()
        app.close()


def main(argv: list[str]) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s gateway: %(message)s")
    try:
        # read again after the CLI's load: the file may have changed since, or read otherwise from here (cwd /)
        config = load(Path(argv[1]))
    except MCPCtlError as exc:
        failed(exc)
        return int(exc.exit_code)
    tls = tls_problems(config)  # before uvicorn, whose error names no file
    if tls:  # every one, one line each, as `config validate` and a config that does not load list them
        failed(config_error(tls))
        return int(ExitCode.USAGE)
    paths = legacy.paths_for(resolve_home(), config.project)  # its project's servers, and its own files there
    paths.ensure_gateway()
    lock = InstanceLock(paths.gateway_file(record.LOCK))
    if not lock.acquire():
        report("busy")
        return int(ExitCode.BUSY)
    try:
        gateway = config.gateway or GatewayConfig()
        sock = bind(gateway)
    except MCPCtlError as exc:
        failed(exc)
        return int(ExitCode.START_FAILED)
    me = psutil.Process()
    record.write(
        paths,
        state="starting",
        listen=gateway.listen,
        url=url_of(gateway),
        config=argv[1],
        started_at=time.time(),
        create_time=me.create_time(),
        stopped_at=None,
    )
    try:
        asyncio.run(serve(paths, config, sock))
    finally:
        record.write(paths, state="stopped", stopped_at=time.time())
        record.event(paths, "stopped")
        LOG.info("stopped")
        with contextlib.suppress(OSError):
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
