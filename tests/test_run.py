"""`mcpctl run NAME`: the shim in the foreground, under a harness that plays systemd's notify socket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import TINY, Env, alive, settle, tiny_server, wait_for

DAEMONIZER = Path(__file__).parent / "fixtures" / "daemonizer.py"
HANDSHAKE_DELAY = 1.5


class NotifySocket:
    """systemd's side of sd_notify: a unix datagram socket; every message with the time it came."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.address = address
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.done = False
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def first(self, key: str) -> float | None:
        return next((at for at, fields in self.messages if key in fields), None)

    def count(self, key: str) -> int:
        return sum(1 for _, fields in self.messages if key in fields)

    def close(self) -> None:
        self.done = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def notify(env: Env) -> Iterator[NotifySocket]:
    harness = NotifySocket(str(env.workdir / "notify.sock"))
    yield harness
    harness.close()


def launch(env: Env, name: str, *extra: str, environ: dict[str, str] | None = None,
           prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:  # fmt: skip
    command = [*prefix, sys.executable, "-m", "mcpctl", "run", name, *extra]
    return subprocess.Popen(command, cwd=env.workdir, env={**os.environ, **(environ or {})}, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def delayed_tiny() -> dict[str, object]:
    """tiny.py behind a sleep: its handshake cannot be answered before HANDSHAKE_DELAY seconds."""
    become_tiny = f"os.execv(sys.executable, [sys.executable, {str(TINY)!r}])"
    script = f"import time, os, sys; time.sleep({HANDSHAKE_DELAY}); {become_tiny}"
    return {"command": sys.executable, "args": ["-c", script]}


def test_ready_only_after_the_handshake_then_sigterm_ends_the_whole_tree(env: Env, notify: NotifySocket) -> None:
    env.write_config({"slow": delayed_tiny()})
    began = time.monotonic()
    proc = launch(env, "slow", "--log-format", "json", environ={"NOTIFY_SOCKET": notify.address})
    ready_at = wait_for(lambda: notify.first("READY"), timeout=60)
    assert ready_at - began >= HANDSHAKE_DELAY  # not at spawn: only once the server could answer
    record = env.record("slow")
    assert record["state"] == "ready"  # the handshake was done when READY=1 came
    assert record["server_info"]
    assert any(fields.get("STATUS", "").endswith("starting") for at, fields in notify.messages if at < ready_at)
    status = settle(env, "slow", lambda s: s.get("state") == "ready")
    assert status["shim_pid"] == proc.pid  # `run` became the shim: the same pid systemd watches
    server_pid = status["pid"]
    assert env.run("start", "slow").returncode == 0  # a start joins the running one
    assert env.run("ping", "slow").returncode == 0  # through the same MCP socket as a detached shim's
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert notify.count("STOPPING") >= 1
    assert notify.count("WATCHDOG") == 0  # no $WATCHDOG_USEC, no pings
    assert not alive(server_pid)
    assert env.our_processes() == []  # nothing left: no shim, no server, no writer
    assert env.record("slow")["state"] == "stopped"
    lines = [json.loads(line) for line in err.splitlines()]
    assert {"server", "time", "source", "line"} <= set(lines[0])
    assert any(line["source"] == "mcpctl" and line["line"].startswith("ready in") for line in lines)
    assert "ready in" in env.paths.log_file("slow").read_text()  # the log file has them too


def test_watchdog_pings_when_watchdog_usec_is_set_abstract_socket(env: Env) -> None:
    harness = NotifySocket(f"@mcpctl-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        env.write_config({"t": tiny_server()})
        proc = launch(env, "t", environ={"NOTIFY_SOCKET": harness.address, "WATCHDOG_USEC": "400000"})
        wait_for(lambda: harness.first("READY"), timeout=60)
        wait_for(lambda: harness.count("WATCHDOG") >= 5, timeout=30)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    finally:
        harness.close()


def test_a_second_run_or_start_of_the_same_server_refuses(env: Env) -> None:
    env.write_config({"t": tiny_server()})
    proc = launch(env, "t")
    settle(env, "t", lambda s: s.get("state") == "ready", timeout=60)
    second = env.run("run", "t")
    assert second.returncode == 9, second.stderr
    assert "already running" in second.stderr
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "[mcpctl] ready in" in err  # text lines on stderr, as in the log file


def test_run_gives_up_with_exit_4_and_refuses_a_bad_env_with_7(env: Env) -> None:
    crash = {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"], "restart": "never"}
    env.write_config({"crash": crash, "keyless": {**tiny_server(), "required_env": ["NO_SUCH_KEY_21"]}})
    proc = launch(env, "crash")
    proc.communicate(timeout=60)
    assert proc.returncode == 4
    refused = env.run("run", "keyless")
    assert refused.returncode == 7
    assert "NO_SUCH_KEY_21" in refused.stderr
    assert env.run("run", "t", "--log-format", "xml").returncode == 2


@pytest.mark.parametrize("name", ["../x", "a/b/c", ".x", "a b"])
def test_run_checks_the_name_as_every_command_does(env: Env, name: str) -> None:
    # run took any string to the project lookup: `../x` and `a/b/c` were exit 2, `.x` a config miss.
    env.write_config({"demo": tiny_server()})
    proc = env.run("run", name)
    assert (proc.returncode, proc.stdout) == (8, "")
    assert proc.stderr.startswith(f"error: unknown server {name!r}: not a server name ")
    assert proc.stderr == env.run("status", name).stderr
    assert env.our_processes() == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="a PID namespace needs root")
def test_as_pid_1_it_reaps_a_daemonizing_grandchild(env: Env) -> None:
    env.write_config({"d": {"command": sys.executable, "args": [str(DAEMONIZER)]}})
    proc = launch(env, "d", prefix=("unshare", "--pid", "--fork", "--mount-proc"))
    shim = wait_for(lambda: _child(proc.pid), timeout=30)  # unshare's child: PID 1 of the new namespace
    wait_for(lambda: env.record("d").get("state") == "ready", timeout=60)
    assert env.record("d")["shim_pid"] == 1
    sleeper = wait_for(lambda: _sleeper(shim), timeout=30)
    assert sleeper.ppid() == shim.pid  # orphaned, and adopted by PID 1
    wait_for(lambda: not psutil.pid_exists(sleeper.pid), timeout=30)  # ended *and reaped*: no zombie left
    assert all(p.status() != psutil.STATUS_ZOMBIE for p in shim.children(recursive=True))
    os.kill(shim.pid, signal.SIGTERM)  # as `docker stop` or the kubelet would: to PID 1
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert env.our_processes() == []


def _child(pid: int) -> psutil.Process | None:
    children = psutil.Process(pid).children()
    return children[0] if children and "mcpctl.shim" in " ".join(children[0].cmdline()) else None


def _sleeper(shim: psutil.Process) -> psutil.Process | None:
    for child in shim.children():
        try:
            if "mcpctl-test-sleeper" in child.cmdline():
                return child
        except psutil.Error:
            continue
    return None
