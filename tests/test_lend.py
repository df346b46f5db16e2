"""`mcpctl connect` lends its stdin and stdout to the shim (one hop instead of two), leaves their flags
alone, and still carries the session over when the shim goes: a request in flight in a killed shim is
answered, a line half read by a stopped one reaches the next. A file on stdin is relayed as before."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import Env, wait_for
from tests.test_client_state import resourceful

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
CONNECT = [sys.executable, "-m", "mcpctl", "connect", "res"]
BUDGET = 60.0


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _ping(n: int) -> bytes:
    return _line({"jsonrpc": "2.0", "id": n, "method": "ping"})


class Piped:
    """`mcpctl connect res` on pipes this test made and keeps its own copies of (the same open files)."""

    def __init__(self, env: Env) -> None:
        self.stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, self.stdout_w = os.pipe()
        self.proc = subprocess.Popen(CONNECT, stdin=self.stdin_r, stdout=self.stdout_w, cwd=env.workdir)
        self.reader = os.fdopen(self.stdout_r, "rb")

    def send(self, data: bytes) -> None:
        os.write(self.stdin_w, data)

    def answer(self, request_id: object) -> dict[str, Any]:
        while True:
            line = self.reader.readline()
            assert line, f"connect ended before answering {request_id!r}"
            message: dict[str, Any] = json.loads(line)
            if message.get("id") == request_id and "method" not in message:
                return message

    def end(self) -> int:
        """The client leaves (the end of connect's stdin); connect's exit code."""
        os.close(self.stdin_w)
        code = self.proc.wait(timeout=BUDGET)
        self.close()
        return code

    def close(self) -> None:
        """Whatever a test left: connect killed, every pipe closed (a failed test leaks nothing into the next)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=BUDGET)
        for fd in (self.stdin_r, self.stdin_w, self.stdout_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.reader.close()


@pytest.fixture
def piped(env: Env) -> Iterator[Callable[[], Piped]]:
    made: list[Piped] = []

    def make() -> Piped:
        made.append(Piped(env))
        return made[-1]

    yield make
    for client in made:
        client.close()


class Dropper:
    """What a killed shim's listener does for a moment (the kernel closes a dead process's files last to
    first, so it outlives the shim's other sockets): it takes connections at the shim's socket path and
    drops each unanswered, once its sender has gone quiet, until `end`. `dropped` holds what each sent."""

    def __init__(self, path: Path) -> None:
        path.unlink()  # the live shim keeps its listener; new connections come here
        self.path, self.dropped = path, list[bytes]()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen()
        self.listener.settimeout(0.05)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            got = b""
            with conn, contextlib.suppress(OSError):
                conn.settimeout(0.2)
                while chunk := conn.recv(64 * 1024):
                    got += chunk
            self.dropped.append(got)
        self.path.unlink()
        self.listener.close()

    def end(self) -> None:
        self.done.set()
        self.thread.join(timeout=BUDGET)


def _started(env: Env) -> int:
    env.write_config({"res": resourceful()})
    assert env.run("start", "res").returncode == 0
    return int(env.status("res")["shim_pid"])


def _taken(shim: int, fd: int) -> bool:
    """Whether the shim has read everything in the pipe `fd` and is waiting again: what it read is then
    journaled (in the same turn of its loop as the read)."""
    unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
    return unread == 0 and psutil.Process(shim).status() == psutil.STATUS_SLEEPING


def _holds(pid: int, fd: int) -> bool:
    """Whether process `pid` has the open file our `fd` refers to."""
    target = os.readlink(f"/proc/self/fd/{fd}")
    return target in {os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}


def test_the_shim_serves_the_clients_stdio_and_the_bridge_only_holds_the_tether(
    env: Env, piped: Callable[[], Piped]
) -> None:
    shim = _started(env)
    client = piped()
    client.send(_line(INIT) + _line(INITIALIZED))
    assert "result" in client.answer(1)
    for n in range(2, 202):
        client.send(_ping(n))
        assert client.answer(n)["result"] == {}
    assert _holds(shim, client.stdin_r)
    assert _holds(shim, client.stdout_w)
    with open(f"/proc/{client.proc.pid}/io") as io:
        written = int(next(line for line in io if line.startswith("wchar:")).split()[1])
    assert written == 0  # 201 answers, none of them through the bridge
    # The open files are shared with the client (and its shell): their flags are theirs.
    assert os.get_blocking(client.stdin_r)
    assert os.get_blocking(client.stdout_w)
    began = time.monotonic()
    assert client.end() == 0
    assert time.monotonic() - began < 2.0


def test_a_request_in_flight_in_a_killed_shim_is_answered_and_the_session_goes_on(
    env: Env, piped: Callable[[], Piped]
) -> None:
    shim = _started(env)
    client = piped()
    params = {"name": "sleep", "arguments": {"seconds": 9}}
    sleep = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}
    client.send(_line(INIT) + _line(INITIALIZED) + _line(sleep))
    assert "result" in client.answer(1)
    wait_for(lambda: _taken(shim, client.stdin_r))  # so the journal has told the bridge that 2 is in flight
    psutil.Process(shim).kill()
    lost = client.answer(2)
    assert lost["error"]["data"]["type"] == "connection_lost", lost
    assert lost["error"]["data"]["retryable"] is True
    client.send(_ping(3))  # the bridge starts a new shim, as on a first connect, and replays initialize
    pong = client.answer(3)
    assert pong.get("result") == {}, pong
    assert wait_for(lambda: env.status("res").get("shim_pid") not in (None, shim), timeout=BUDGET)
    assert client.end() == 0


def test_a_line_half_read_by_a_stopped_shim_reaches_the_next_one(env: Env, piped: Callable[[], Piped]) -> None:
    shim = _started(env)
    client = piped()
    client.send(_line(INIT) + _line(INITIALIZED))
    assert "result" in client.answer(1)
    ping = _ping(2)
    client.send(ping[:15])
    wait_for(lambda: _taken(shim, client.stdin_r))  # the shim keeps it until the line is whole
    assert env.run("stop", "res").returncode == 0
    assert env.run("start", "res").returncode == 0
    client.send(ping[15:])
    assert client.answer(2)["result"] == {}
    assert client.end() == 0


def test_a_socket_that_drops_the_connection_unanswered_is_no_shim(env: Env, piped: Callable[[], Piped]) -> None:
    """The bridge sends what waits only to a shim that answered the replayed handshake: a connection to a
    killed shim's lingering listener is taken and dropped, and what went there would be lost."""
    shim = _started(env)
    client = piped()
    client.send(_line(INIT) + _line(INITIALIZED))
    assert "result" in client.answer(1)
    dropper = Dropper(env.paths.socket("res"))
    try:
        psutil.Process(shim).kill()
        wait_for(lambda: dropper.dropped, timeout=BUDGET)  # the bridge took it for the next shim
        client.send(_ping(2))
        seen = len(dropper.dropped)
        wait_for(lambda: len(dropper.dropped) > seen + 1, timeout=BUDGET)  # one whole connection since
    finally:
        dropper.end()
    pong = client.answer(2)  # from a shim the bridge started once nothing listened
    assert pong.get("result") == {}, pong
    assert all(b"initialize" in got and b'"id": 2' not in got for got in dropper.dropped), dropper.dropped
    assert client.end() == 0


def test_a_file_on_stdin_is_relayed(env: Env) -> None:
    _started(env)
    requests = env.workdir / "requests.jsonl"
    requests.write_bytes(_line(INIT) + _line(INITIALIZED) + _ping(2) + _ping(3))
    with requests.open("rb") as stdin:
        argv = [*CONNECT, "--drain"]
        done = subprocess.run(argv, stdin=stdin, capture_output=True, cwd=env.workdir, timeout=BUDGET, check=False)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a.get("id") for a in answers] == [1, 2, 3]


def test_stdio_on_one_socket_is_lent_too(env: Env) -> None:
    """What libuv (Node clients) gives a child: a socket as its stdin and stdout."""
    shim = _started(env)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        proc = subprocess.Popen(CONNECT, stdin=theirs.fileno(), stdout=theirs.fileno(), cwd=env.workdir)
        reader = ours.makefile("rb")
        ours.sendall(_line(INIT) + _line(INITIALIZED) + _ping(2))
        answers = [json.loads(reader.readline()) for _ in range(2)]
        assert [a["id"] for a in answers] == [1, 2]
        assert _holds(shim, theirs.fileno())
        ours.shutdown(socket.SHUT_WR)  # the end of its stdin
        assert proc.wait(timeout=BUDGET) == 0
        reader.close()


def test_a_shim_that_refuses_the_client_is_heard_by_it(env: Env, piped: Callable[[], Piped]) -> None:
    """Past `max_clients` the shim answers the connection with why and closes it: that reaches the client,
    though nothing else sent before the lend's answer does (it could only be for a client not initialized),
    and so does an answer to its initialize; then connect ends, exit 9 (busy)."""
    env.write_config({"res": resourceful(max_clients=1)})
    assert env.run("start", "res").returncode == 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as holder:
        holder.connect(str(env.paths.socket("res")))
        client = piped()
        client.send(_line(INIT))
        refusal = json.loads(client.reader.readline())
        assert client.answer(1)["error"]["data"]["type"] == "too_many_clients"
        assert client.proc.wait(timeout=BUDGET) == 9  # while the holder stays: not kept waiting for a place
    assert refusal["id"] is None
    assert "max_clients" in refusal["error"]["message"]
    assert refusal["error"]["data"]["retryable"] is True
