"""One peer cannot hold up the others: a huge client line, a flooding server and a crowd of connections
leave the other clients served, `stop` on time, and the shim alive."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from tests.conftest import Env, fixture_server, tiny_server
from tests.test_client_state import client, resourceful
from tests.test_multiplexer import Raw

MiB = 1024 * 1024


def _huge_line(env: Env, until: threading.Event, written: list[int]) -> None:
    """A request whose id is at its start, then a text that goes on until `until` (at least 300 MB)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(env.paths.socket("demo")))
    sock.settimeout(240)
    start = b'{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"name":"echo","arguments":{"text":"'
    sock.sendall(start)
    total, chunk = len(start), b"x" * MiB
    while (total < 300_000_000 or not until.is_set()) and total < 2_000_000_000:
        sock.sendall(chunk)
        total += len(chunk)
    sock.sendall(b'"}}}\n')
    buffer = b""
    while b"\n" not in buffer:
        buffer += sock.recv(65536)
    written.append(total)
    written.append(json.loads(buffer.split(b"\n")[0])["error"]["data"]["size"])
    sock.close()


def test_a_300_mb_line_from_one_client_leaves_five_sdk_clients_served(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", max_message_bytes=8 * MiB)})
    assert env.run("start", "demo").returncode == 0
    done, written = threading.Event(), []
    writer = threading.Thread(target=_huge_line, args=(env, done, written), daemon=True)

    async def use() -> None:
        async with AsyncExitStack() as stack:
            stack.enter_context(anyio.fail_after(240))
            others = [await stack.enter_async_context(client(env, "demo")) for _ in range(5)]
            writer.start()

            async def serve(one: Any, n: int) -> None:
                for round_ in range(4):  # each within the SDK's 15 s: the usual per-request timeout here
                    with anyio.fail_after(15):
                        assert await one.call("echo", text=f"{n}.{round_}") == f"{n}.{round_}"
                        await one.session.send_ping()

            async with anyio.create_task_group() as group:
                for n, one in enumerate(others):
                    group.start_soon(serve, one, n)
            done.set()

    anyio.run(use)
    writer.join(timeout=240)
    assert written, "the huge line got no answer"
    assert written[1] >= 300_000_000  # the error named the whole size: the line was read to its end


def test_a_server_flooding_stdout_and_stderr_does_not_delay_stop_or_pings(env: Env) -> None:
    env.write_config({"flood": resourceful("flood", stop_timeout=10)})
    assert env.run("start", "flood").returncode == 0
    pinger = Raw(env, "flood")
    for n in range(3):
        pinger.send({"id": n, "method": "ping"})
        while pinger.receive().get("id") != n:  # its share of the flood arrives too
            pass
    pinger.close()
    began = time.monotonic()
    stopped = env.run("stop", "flood")
    assert stopped.returncode == 0, stopped.stderr
    assert time.monotonic() - began < 10  # within stop_timeout: the server honours SIGTERM once it gets one


def test_past_max_clients_a_client_gets_one_error_line_naming_the_cap(env: Env) -> None:
    env.write_config({"demo": tiny_server(max_clients=3)})
    assert env.run("start", "demo").returncode == 0
    held = [Raw(env) for _ in range(3)]
    for n, one in enumerate(held):
        one.send({"id": n, "method": "ping"})
        assert one.answer(n)["result"] == {}
    extra = Raw(env)
    refusal = extra.receive()
    assert refusal["id"] is None
    assert "max_clients" in refusal["error"]["message"]
    data = refusal["error"]["data"]
    assert data == {"type": "too_many_clients", "max_clients": 3, "retryable": True, "hint": data["hint"]}
    assert "max_clients" in data["hint"]
    assert extra.sock.recv(10) == b""  # then closed
    held.pop().close()
    late = wait_accepted(env)
    for one in (*held, late, extra):
        one.close()


@pytest.fixture
def full(env: Env) -> Iterator[Raw]:
    """demo started with max_clients = 1, and the one client it takes, held for the test's length."""
    env.write_config({"demo": tiny_server(max_clients=1)})
    assert env.run("start", "demo").returncode == 0
    holder = Raw(env)
    holder.send({"id": "held", "method": "ping"})
    assert holder.answer("held")["result"] == {}
    yield holder
    holder.close()


REFUSED = [
    "error: demo has 1 clients connected, its max_clients",
    "hint: try again once one of them has left, or raise max_clients of demo in its config",
]


@pytest.mark.usefixtures("full")
def test_past_max_clients_ping_call_and_tools_say_why_at_once_and_exit_busy(env: Env) -> None:
    for command in (["ping", "demo"], ["call", "demo", "echo"], ["tools", "demo"]):
        refused = env.run(*command)
        assert refused.returncode == 9, (command, refused.stderr)
        assert refused.stderr.splitlines() == REFUSED, command  # the shim's words, not a lost connection, no retries
    as_json = env.run("ping", "demo", "--json")
    assert json.loads(as_json.stdout)["error"]["type"] == "too_many_clients"


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}


@pytest.mark.usefixtures("full")
def test_past_max_clients_connect_answers_the_client_with_why_and_exits_busy(env: Env, tmp_path: Path) -> None:
    request = json.dumps(INIT) + "\n"
    lent = subprocess.run(  # pipes: its stdio is offered to the shim
        [sys.executable, "-m", "mcpctl", "connect", "demo"],
        check=False,
        input=request,
        capture_output=True,
        text=True,
        cwd=env.workdir,
        timeout=60,
    )
    out = tmp_path / "out.jsonl"
    with out.open("w") as stdout:  # a file: relayed
        relayed = subprocess.run(
            [sys.executable, "-m", "mcpctl", "connect", "demo"],
            check=False,
            input=request,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            cwd=env.workdir,
            timeout=60,
        )
    for proc, said in ((lent, lent.stdout), (relayed, out.read_text())):
        assert proc.returncode == 9, proc.stderr
        assert proc.stderr.splitlines() == REFUSED
        lines = [json.loads(line) for line in said.splitlines()]
        assert lines[0]["id"] is None  # the shim's line
        assert lines[0]["error"]["data"]["max_clients"] == 1
        answer = next(line for line in lines if line.get("id") == 1)  # and the client's initialize, answered
        assert answer["error"]["data"]["type"] == "too_many_clients"


def wait_accepted(env: Env) -> Raw:
    """A client the shim takes, once a place is free (the shim may not have seen the last close yet)."""
    deadline = time.monotonic() + 15
    while True:
        one = Raw(env)
        one.send({"id": "p", "method": "ping"})
        answer = one.receive()
        if answer.get("id") == "p" or time.monotonic() > deadline:
            assert answer.get("result") == {}, answer
            return one
        one.close()
        time.sleep(0.1)


def test_2000_connection_attempts_past_the_cap_and_the_fd_limit_leave_the_shim_serving(env: Env) -> None:
    env.write_config({"demo": tiny_server(max_clients=150)})
    assert env.run("start", "demo").returncode == 0
    shim = psutil.Process(env.status("demo")["shim_pid"])
    shim.rlimit(psutil.RLIMIT_NOFILE, (120, shim.rlimit(psutil.RLIMIT_NOFILE)[1]))  # below the cap: EMFILE first
    existing = Raw(env)
    existing.send({"id": "first", "method": "ping"})
    assert existing.answer("first")["result"] == {}
    crowd: list[socket.socket] = []
    connected: list[socket.socket] = []  # not refused by the kernel (its backlog is 128 deep)
    try:
        for _ in range(2000):  # held open, all of them: past the cap and past the shim's descriptors
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            crowd.append(sock)
            try:
                sock.connect(str(env.paths.socket("demo")))
            except BlockingIOError:  # the backlog is full: an attempt all the same
                continue
            connected.append(sock)
        shim.cpu_percent()
        for n in range(5):
            existing.send({"id": n, "method": "ping"})
            assert existing.answer(n)["result"] == {}
            time.sleep(0.3)
        assert shim.cpu_percent() < 50  # refusing, not spinning on a socket it cannot accept from
        # The control socket still answers: clients are refused while FD_RESERVE descriptors are left.
        assert env.status("demo")["state"] == "ready"
        refused = [_first_line(sock) for sock in connected[-50:]]  # the shim took them when it could
        assert any("near its limit of open files" in line for line in refused), refused[:3]
    finally:
        for sock in crowd:  # a failing assertion must not leave 2,000 sockets to the next test's GC
            sock.close()
        existing.close()
    wait_accepted(env).close()  # accepting again once descriptors are free
    assert shim.is_running()
    log = env.paths.log_file("demo").read_text()
    assert log.count("refusing clients: fewer than") == 1


def test_a_shim_near_its_limit_of_open_files_refuses_a_client_with_a_typed_error(env: Env) -> None:
    """The refusal while fewer than FD_RESERVE descriptors are left was untyped (no `data.type`, no hint):
    `ping` called it a lost connection (exit 11), `connect` too. It is typed as the one past max_clients:
    `too_many_open_files`, busy (exit 9), retryable, with a hint; a new client is served once files are free."""
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    shim = psutil.Process(env.status("demo")["shim_pid"])
    limits = shim.rlimit(psutil.RLIMIT_NOFILE)
    shim.rlimit(psutil.RLIMIT_NOFILE, (40, limits[1]))  # it has ~15 open: fewer than the 32 it keeps free
    try:
        line = json.loads(_first_refusal(env))
        assert line["id"] is None
        assert line["error"]["data"]["type"] == "too_many_open_files"
        assert line["error"]["data"]["retryable"] is True
        ping = env.run("ping", "demo", "--json")
        assert ping.returncode == 9, (ping.stdout, ping.stderr)
        error = json.loads(ping.stdout)["error"]
        assert error["type"] == "too_many_open_files"
        assert error["message"] == "demo is near its limit of open files (40): its shim takes no new client for now"
        assert "ulimit -n" in error["hint"]
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}
        connect = subprocess.run(
            [sys.executable, "-m", "mcpctl", "connect", "demo"],
            check=False,
            cwd=env.workdir,
            input=json.dumps(init) + "\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert connect.returncode == 9, (connect.stdout, connect.stderr)
        assert "near its limit of open files" in connect.stderr
    finally:
        shim.rlimit(psutil.RLIMIT_NOFILE, limits)
    assert env.run("ping", "demo").returncode == 0


def _first_refusal(env: Env) -> str:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(env.paths.socket("demo")))
    try:
        return _first_line(sock)
    finally:
        sock.close()


def _first_line(sock: socket.socket) -> str:
    sock.setblocking(True)
    sock.settimeout(2.0)
    try:
        return sock.recv(4096).decode("utf-8", "replace")
    except OSError:
        return ""


def test_a_client_the_restarted_shim_will_not_take_is_told_why_and_connect_exits_busy(env: Env) -> None:
    """Two clients connected, then the server stopped and started again under max_clients = 1: the one the
    new shim refuses gets the refusal for what it sent and its connect exits 9, as at a first connect,
    instead of reconnecting for ever; the other is served by the new shim."""
    env.write_config({"demo": tiny_server(max_clients=2)})
    assert env.run("start", "demo").returncode == 0
    clients = [
        subprocess.Popen(
            [sys.executable, "-m", "mcpctl", "connect", "demo"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=env.workdir,
        )
        for _ in range(2)
    ]
    try:
        for proc in clients:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write((json.dumps(INIT) + "\n").encode())
            proc.stdin.flush()
            assert json.loads(proc.stdout.readline())["id"] == 1
        env.write_config({"demo": tiny_server(max_clients=1)})
        assert env.run("stop", "demo").returncode == 0
        assert env.run("start", "demo").returncode == 0
        answers: list[tuple[subprocess.Popen[bytes], dict[str, Any]]] = []
        for proc in clients:
            assert proc.stdin is not None
            proc.stdin.write(b'{"jsonrpc":"2.0","id":"after","method":"ping"}\n')
            proc.stdin.flush()
        for proc in clients:
            assert proc.stdout is not None
            while True:
                line = proc.stdout.readline()
                assert line, "connect ended without answering the ping"
                message = json.loads(line)
                if message.get("id") == "after":
                    break
            answers.append((proc, message))
        served = [proc for proc, answer in answers if answer.get("result") == {}]
        refused = [(proc, answer) for proc, answer in answers if "error" in answer]
        assert (len(served), len(refused)) == (1, 1), answers
        proc, answer = refused[0]
        assert answer["error"]["data"]["type"] == "too_many_clients"
        assert proc.wait(timeout=30) == 9
        assert served[0].poll() is None  # still connected
    finally:
        for proc in clients:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
