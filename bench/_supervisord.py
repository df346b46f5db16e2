"""supervisord in a private temp dir, for bench/vs_supervisord.py. Not a benchmark itself.

`Supervisord` writes its own supervisord.conf (unix socket with a short path, logs, one [program:NAME] per
server, autostart off), runs the daemon in the foreground (`supervisord -n`) as our child, and on exit
shuts it down (`supervisorctl shutdown`), ends anything still carrying its tag and deletes the dir.
Every process it starts carries MCB_SUPERVISORD=<its dir> in its environment (the daemon passes its own
environment on), so the sweep finds the daemon and its servers and nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import _common as c

TAG = "MCB_SUPERVISORD"
BOOT_TIMEOUT_S = 30
PROBE_ID = 1
RPC_ERRORS = (OSError, xmlrpc.client.Error, http.client.HTTPException)


def installed() -> bool:
    return importlib.util.find_spec("supervisor") is not None


def _command(name: str) -> list[str]:
    """The console script next to this Python (what a user runs), else `python -m supervisor.NAME`."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.is_file() else [sys.executable, "-m", f"supervisor.{name}"]


def _conf(folder: Path, servers: Iterable[tuple[str, Path]], startsecs: int) -> str:
    head = f"""[unix_http_server]
file = {folder / "s.sock"}
chmod = 0700

[supervisord]
logfile = {folder / "supervisord.log"}
pidfile = {folder / "supervisord.pid"}
childlogdir = {folder}
loglevel = warn
nodaemon = true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{folder / "s.sock"}
"""
    # stopwaitsecs matches the bench configs' stop_timeout (5 s); the rest are supervisord's defaults.
    programs = [
        f"""
[program:{name}]
command = {sys.executable} {script}
directory = {folder}
autostart = false
startsecs = {startsecs}
stopwaitsecs = 5
stopasgroup = true
killasgroup = true
stdout_logfile = {folder / f"{name}.out"}
stderr_logfile = {folder / f"{name}.err"}
"""
        for name, script in servers
    ]
    return head + "".join(programs)


class Supervisord(c.Box):
    """A private supervisord managing `servers` with the given startsecs; `supervisorctl` is the command."""

    tool = "supervisorctl"

    def __init__(self, servers: Iterable[tuple[str, Path]], startsecs: int) -> None:
        servers = list(servers)
        self.names = [name for name, _ in servers]
        self.dir = Path(tempfile.mkdtemp(prefix="mcb-sv-"))
        self.conf = self.dir / "supervisord.conf"
        self.conf.write_text(_conf(self.dir, servers, startsecs), encoding="utf-8")
        env = c.bench_env()
        env[TAG] = str(self.dir)
        super().__init__([*_command("supervisorctl"), "-c", str(self.conf)], env)
        self.daemon: subprocess.Popen[bytes] | None = None
        self.shutdown_s: float | None = None
        self.leftovers: list[str] = []

    def boot(self) -> float:
        """Start the daemon; seconds until it answers on its socket."""
        began = time.perf_counter()
        with open(self.dir / "daemon.out", "wb") as out:
            self.daemon = subprocess.Popen(
                [*_command("supervisord"), "-n", "-c", str(self.conf)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.perf_counter() - began < BOOT_TIMEOUT_S:
            with contextlib.suppress(*RPC_ERRORS):
                if self.rpc().getState()["statename"] == "RUNNING":
                    return time.perf_counter() - began
            if self.daemon.poll() is not None:
                break
            time.sleep(0.01)
        output = (self.dir / "daemon.out").read_text(errors="replace")[-500:]
        raise RuntimeError(f"supervisord did not come up (exit {self.daemon.poll()}): {output}")

    def rpc(self) -> Any:
        """supervisord's XML-RPC namespace `supervisor`, over its unix socket."""
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.dir / 's.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def running(self) -> int:
        """How many programs `supervisorctl status` shows RUNNING."""
        lines = self.run("status").stdout.splitlines()
        return sum(1 for line in lines if line.split()[1:2] == ["RUNNING"])

    def pids(self) -> tuple[int, list[int]]:
        """The daemon's pid and its running servers' pids."""
        assert self.daemon is not None
        return self.daemon.pid, [p["pid"] for p in self.rpc().getAllProcessInfo() if p["pid"]]

    def probe_mcp(self, timeout: float = 30) -> int:
        """Send an MCP initialize to every server (sendProcessStdin) and wait for the answers in their stdout logs.

        supervisord keeps each server's stdin pipe and writes its stdout to a file; this is the only way
        through it. Returns how many answered within `timeout`.
        """
        request = {
            "jsonrpc": "2.0",
            "id": PROBE_ID,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
        # The logs are appended to across runs: only what is written after the request counts.
        offsets = {name: _size(self.dir / f"{name}.out") for name in self.names}
        rpc = self.rpc()
        for name in self.names:
            rpc.sendProcessStdin(name, json.dumps(request) + "\n")
        pending = set(self.names)
        deadline = time.perf_counter() + timeout
        while pending and time.perf_counter() < deadline:
            pending = {name for name in pending if not _answered(self.dir / f"{name}.out", offsets[name])}
            time.sleep(0.002)
        return len(self.names) - len(pending)

    def cleanup(self) -> None:
        try:
            if self.daemon is not None:
                began = time.perf_counter()
                self.run("shutdown", timeout=60)
                self.daemon.wait(timeout=30)
                self.shutdown_s = time.perf_counter() - began
        except subprocess.TimeoutExpired:
            print("warning: supervisord did not shut down within 90 s", file=sys.stderr)
        finally:
            self.leftovers = c.sweep_leftovers(str(self.dir), key=TAG)
            for line in self.leftovers:
                print(f"warning: process left behind after supervisord's shutdown, ended it: {line}", file=sys.stderr)
            if self.daemon is not None and self.daemon.poll() is None:
                self.daemon.kill()
                self.daemon.wait()
            shutil.rmtree(self.dir, ignore_errors=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _answered(stdout_log: Path, offset: int) -> bool:
    try:
        with open(stdout_log, "rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return False
    for line in lines:
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("id") == PROBE_ID and "result" in message:
                return True
    return False
