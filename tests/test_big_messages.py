"""Big messages on the shared session: whole up to max_message_bytes, an error to the sender past it, and
one client's huge line never holds up another client's answers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable

from tests.conftest import Env, fixture_server
from tests.test_multiplexer import Raw, _start, _text, raw

__all__ = ["raw"]  # the fixture, used by name

MiB = 1024 * 1024
SIZE = 20_000_000  # a 20 MB file read through a server: well past the old 16 MiB cliff


def test_a_20_mb_tool_result_arrives_whole_through_connect_with_the_default_limit(env: Env) -> None:
    """A raw JSON-RPC client of `mcpctl connect` (the SDK client's own parsing of 20 MB is not what is
    tested here): the answer is one line, whole, under the client's own id."""
    env.write_config({"demo": fixture_server("healthy")})
    requests = [
        {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}},
        {
            "jsonrpc": "2.0",
            "id": "big",
            "method": "tools/call",
            "params": {"name": "blob", "arguments": {"size": 20_000_000}},
        },
    ]
    bridge = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "connect", "demo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=env.workdir,
    )
    assert bridge.stdin is not None
    assert bridge.stdout is not None
    try:
        bridge.stdin.write("".join(json.dumps(r) + "\n" for r in requests).encode())
        bridge.stdin.flush()
        answers = {}
        while "big" not in answers:
            line = bridge.stdout.readline()
            assert line, "connect ended before the big answer arrived"
            answer = json.loads(line)
            answers[answer.get("id")] = answer
        text = answers["big"]["result"]["content"][0]["text"]
        assert len(text) == SIZE
        assert text == "b" * SIZE
    finally:
        bridge.kill()
        bridge.wait(timeout=30)
        bridge.stdin.close()
        bridge.stdout.close()


def test_a_server_answer_past_the_limit_is_an_error_to_the_client_that_asked(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env, max_message_bytes=MiB)
    client = raw()
    client.call(1, "blob", {"size": 2 * MiB})
    error = client.answer(1)["error"]
    assert "past the limit of 1048576 bytes" in error["message"]
    assert error["data"]["limit"] == MiB
    assert error["data"]["size"] > 2 * MiB
    client.call(2, "blob", {"size": 1000})  # the session goes on
    assert _text(client.answer(2)) == "b" * 1000
    assert "past the limit of 1048576" in env.paths.log_file("demo").read_text()


def test_a_300_mb_client_line_gets_an_error_while_another_clients_pings_are_answered(
    env: Env, raw: Callable[..., Raw]
) -> None:
    _start(env, max_message_bytes=8 * MiB)
    sender, other = raw(), raw()
    sender.sock.settimeout(120)
    pinged = threading.Event()
    written: list[int] = []
    # A request whose id is at its start, then a text that never ends: the writer keeps the shim's
    # socket full until the other client's pings are answered (at least 300 MB, at most 2 GB).
    start = b'{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"name":"echo","arguments":{"text":"'
    chunk = b"x" * MiB

    def write() -> None:
        sender.sock.sendall(start)
        total = len(start)
        while (total < 300_000_000 or not pinged.is_set()) and total < 2_000_000_000:
            sender.sock.sendall(chunk)
            total += len(chunk)
        sender.sock.sendall(b'"}}}\n')
        written.append(total)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    for n in range(5):
        other.send({"id": n, "method": "ping"})
        assert other.answer(n)["result"] == {}
    pinged.set()
    writer.join(timeout=240)
    assert written, "the writer did not finish"
    error = sender.answer("big")["error"]
    assert "past the limit of 8388608 bytes" in error["message"]
    assert error["data"]["size"] >= 300_000_000
    sender.call(2, "echo", {"text": "still here"})  # the connection lives on
    assert _text(sender.answer(2)) == "still here"


def test_a_notification_past_the_limit_gets_an_error_with_a_null_id(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env, max_message_bytes=MiB)
    client = raw()
    client.sock.sendall(json.dumps({"jsonrpc": "2.0", "method": "x", "params": {"t": "y" * 2 * MiB}}).encode() + b"\n")
    error = client.receive()
    assert error["id"] is None
    assert "past the limit" in error["error"]["message"]
