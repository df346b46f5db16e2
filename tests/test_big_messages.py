"""Big messages on the shared session: whole up to max_message_bytes, an error to the sender past it, and
one client's huge line never holds up another client's answers."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from tests.conftest import Env, fixture_server, settle, tiny_server, wait_for
from tests.test_multiplexer import Raw, _start, _text, raw

__all__ = ["raw"]  # the fixture, used by name

MiB = 1024 * 1024
SIZE = 20_000_000  # a 20 MB file read through a server: well past the old 16 MiB cliff
# Past the 64 MiB at which the shim once gave up on a peer (a server's stdin, a client) even while it read
# at full speed, and far under the 256 MiB default max_message_bytes. Each test holds a few copies of it
# in each of three processes (about 1 GB in all, at most), and takes seconds on a loaded 2-core box.
BIG = 70 * MiB
OLD_LIMIT = 64 * MiB
# The SDK server sends a tool's text twice (content and structuredContent): this text makes a BIG answer.
BLOB = BIG // 2
# How long one big message may take to go through, on a loaded box: generous, as it only bounds a failure.
BIG_WAIT = 90.0  # under the per-test timeout (120 s), so a failure says what it waited for


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


# -- 70 MiB both ways, with the default max_message_bytes ------------------------------------------


def _big_request(request_id: str) -> bytes:
    """tools/call add with a 70 MiB argument the server ignores: a huge request, a tiny answer."""
    arguments = {"a": 1, "b": 2, "pad": "z" * BIG}
    return _line(request_id, "tools/call", {"name": "add", "arguments": arguments})


def _line(request_id: object, method: str, params: dict[str, Any] | None = None) -> bytes:
    message = {"jsonrpc": "2.0", "id": request_id, "method": method, **({"params": params} if params else {})}
    return json.dumps(message).encode() + b"\n"


def _lines(read: Callable[[], bytes]) -> Iterator[bytes]:
    """The lines `read` gives, split in linear time (newlines searched for in new bytes only)."""
    buffer = bytearray()
    while True:
        chunk = read()
        assert chunk, "the stream ended"
        start = len(buffer)
        buffer += chunk
        while (newline := buffer.find(b"\n", start)) >= 0:
            yield bytes(buffer[:newline])
            del buffer[: newline + 1]
            start = 0


def _answers(lines: Iterator[bytes], *ids: object) -> dict[object, dict[str, Any]]:
    """The answers to `ids`, whatever came between them."""
    found: dict[object, dict[str, Any]] = {}
    while not set(ids) <= set(found):
        message = json.loads(next(lines))
        if "method" not in message:
            found[message.get("id")] = message
    return found


def _socket_lines(sock: socket.socket) -> Iterator[bytes]:
    sock.settimeout(BIG_WAIT)
    return _lines(lambda: sock.recv(4 * MiB))


def _pipe_lines(pipe: IO[bytes]) -> Iterator[bytes]:
    def read() -> bytes:
        ready, _, _ = select.select([pipe], [], [], BIG_WAIT)
        assert ready, f"nothing came within {BIG_WAIT:g}s"
        return os.read(pipe.fileno(), 4 * MiB)

    return _lines(read)


def test_a_70_mib_request_reaches_the_server_and_the_session_goes_on(env: Env, raw: Callable[..., Raw]) -> None:
    """The server's stdin took the start of it, and the shim gave up on the rest (and on every message
    after it) without a word: no answer, pings timing out, status still ready."""
    _start(env)
    client = raw()
    client.sock.sendall(_big_request("big") + _line(2, "ping"))
    answers = _answers(_socket_lines(client.sock), "big", 2)
    assert _text(answers["big"]) in ("3", "3.0")
    assert answers[2]["result"] == {}
    assert env.status("demo")["state"] == "ready"


def test_a_70_mib_tool_result_arrives_whole_through_a_raw_socket(env: Env, raw: Callable[..., Raw]) -> None:
    """The shim closed the client's socket once 64 MiB of the answer waited in its outbox."""
    _start(env)
    client = raw()
    client.sock.sendall(_line("big", "tools/call", {"name": "blob", "arguments": {"size": BLOB}}) + _line(2, "ping"))
    answers = _answers(_socket_lines(client.sock), "big", 2)
    assert _text(answers["big"]) == "b" * BLOB
    assert len(json.dumps(answers["big"])) > OLD_LIMIT
    assert answers[2]["result"] == {}


def _connect(env: Env, stdout: int | IO[bytes] = subprocess.PIPE, *flags: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "connect", *flags, "demo"],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        cwd=env.workdir,
    )


def _stop(bridge: subprocess.Popen[bytes]) -> None:
    bridge.kill()
    bridge.wait(timeout=30)
    for pipe in (bridge.stdin, bridge.stdout):
        if pipe is not None:
            pipe.close()


def test_70_mib_both_ways_through_connect_with_its_stdio_lent_to_the_shim(env: Env) -> None:
    """The shim writes the client's stdout itself: it gave up on it past 64 MiB, mid-line, and connect
    wrote its connection_lost error on the same line."""
    _start(env)
    bridge = _connect(env)
    assert bridge.stdin is not None
    assert bridge.stdout is not None
    blob = _line("blob", "tools/call", {"name": "blob", "arguments": {"size": BLOB}})
    try:
        bridge.stdin.write(_line(0, "initialize", {"protocolVersion": "2025-11-25"}) + _big_request("add") + blob)
        bridge.stdin.flush()
        answers = _answers(_pipe_lines(bridge.stdout), "add", "blob")
        assert _text(answers["add"]) in ("3", "3.0")
        assert _text(answers["blob"]) == "b" * BLOB
        assert len(json.dumps(answers["blob"])) > OLD_LIMIT
    finally:
        _stop(bridge)


def test_a_70_mib_tool_result_arrives_whole_through_connect_relaying_to_a_file(env: Env, tmp_path: Path) -> None:
    """Stdout a file: connect relays, and the shim gave up on its socket past 64 MiB."""
    _start(env)
    out = tmp_path / "out.jsonl"
    with out.open("wb") as stdout:
        bridge = _connect(env, stdout, "--drain")  # stdin's end: the answer, then connect exits
    assert bridge.stdin is not None
    blob = _line("blob", "tools/call", {"name": "blob", "arguments": {"size": BLOB}})
    try:
        bridge.stdin.write(_line(0, "initialize", {"protocolVersion": "2025-11-25"}) + blob)
        bridge.stdin.close()
        assert bridge.wait(timeout=BIG_WAIT) == 0
    finally:
        _stop(bridge)
    with out.open("rb") as lines:
        answers = {message["id"]: message for message in map(json.loads, lines)}
    assert set(answers) == {0, "blob"}
    assert _text(answers["blob"]) == "b" * BLOB
    assert len(json.dumps(answers["blob"])) > OLD_LIMIT


# -- a client that stops reading -------------------------------------------------------------------


def test_a_lent_stdout_left_mid_line_is_ended_before_connects_errors(env: Env) -> None:
    """A client of connect that stops reading with more than max_message_bytes unread is let go by the
    shim (logged) in the middle of an answer: connect ends that line before its own, and answers with an
    error each request whose answer was not written whole (the journal had said them answered)."""
    _start(env, max_message_bytes=MiB)
    bridge = _connect(env)
    stdin = bridge.stdin
    assert stdin is not None

    def send(data: bytes) -> None:
        stdin.write(data)
        stdin.flush()

    try:
        send(_blobs_unread())
        _cut_then_errors(env, bridge, send)
    finally:
        _stop(bridge)


def test_a_lent_client_let_go_for_not_reading_is_told_why_not_that_its_shim_went_away(env: Env, tmp_path: Path) -> None:
    """The shim lets go of a lent stdio whose client left more than max_message_bytes unread, and lives on.
    connect said on stderr nothing, and to each request in flight "its shim went away ... try again"
    (which, not reading, it cannot): now one line on stderr and each answer say why, and what to do."""
    _start(env, max_message_bytes=MiB)
    pid = env.status("demo")["pid"]
    stderr = tmp_path / "connect.err"
    with stderr.open("wb") as said:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "mcpctl", "connect", "demo"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=said,
            cwd=env.workdir,
        )
    assert bridge.stdin is not None
    assert bridge.stdout is not None
    try:
        bridge.stdin.write(_blobs_unread())
        bridge.stdin.flush()
        wait_for(lambda: "bytes unread (max_message_bytes): disconnected" in env.paths.log_file("demo").read_text())
        lines = _pipe_lines(bridge.stdout)
        assert json.loads(next(lines))["id"] == 0
        next(lines)  # the answer being written when the shim let go, ended by connect
        errors = _answers(lines, *BLOBS_UNREAD)
    finally:
        _stop(bridge)
    why = "the shim let go of this client, which left more than 1048576 bytes unread on stdout (max_message_bytes)"
    for error in errors.values():
        assert error["error"]["message"] == f"lost the connection to demo: {why}"
        assert error["error"]["data"]["type"] == "connection_lost"
        assert "raise max_message_bytes of demo" in error["error"]["data"]["hint"]
    (line,) = stderr.read_text().splitlines()
    assert line.startswith("mcpctl: demo: the client left more than 1048576 bytes unread on stdout")
    assert "raise max_message_bytes of demo" in line
    assert env.status("demo")["pid"] == pid  # the shim and its server never went away


def test_a_relayed_line_cut_by_the_shim_is_ended_before_connects_errors(env: Env) -> None:
    """Stdin a terminal: connect relays, and the shim closes its socket mid-answer once connect, stuck
    writing to a stdout nobody reads, leaves more than max_message_bytes unread; connect wrote its
    connection_lost errors on the same line as the cut answer."""
    _start(env, max_message_bytes=MiB)
    terminal, stdin = os.openpty()
    tty.setraw(stdin)  # bytes as they are: no echo, no line editing
    bridge = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "connect", "demo"],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=env.workdir,
    )
    os.close(stdin)
    try:
        os.write(terminal, _blobs_unread())
        _cut_then_errors(env, bridge, lambda data: os.write(terminal, data))
    finally:
        _stop(bridge)
        os.close(terminal)


BLOBS_UNREAD = (1, 2, 3, 4)


def _blobs_unread() -> bytes:
    """initialize, then answers of about 800 kB each: more than 1 MiB waits for a client that reads none."""
    blobs = [_line(n, "tools/call", {"name": "blob", "arguments": {"size": 400_000}}) for n in BLOBS_UNREAD]
    return _line(0, "initialize", {"protocolVersion": "2025-11-25"}) + b"".join(blobs)


def _cut_then_errors(env: Env, bridge: subprocess.Popen[bytes], send: Callable[[bytes], object]) -> None:
    """Once the shim let the client go: the cut answer a line of its own, then an error for each request."""
    log = env.paths.log_file("demo")
    wait_for(lambda: "bytes unread (max_message_bytes): disconnected" in log.read_text(), timeout=60)
    assert bridge.stdout is not None
    lines = _pipe_lines(bridge.stdout)
    assert json.loads(next(lines))["id"] == 0
    cut = next(lines)  # the answer being written when the shim let go, ended by connect: not JSON
    assert cut.startswith(b'{"jsonrpc"')
    assert cut.count(b'"jsonrpc"') == 1
    errors = _answers(lines, *BLOBS_UNREAD)
    assert {e["error"]["data"]["type"] for e in errors.values()} == {"connection_lost"}
    send(_line(9, "ping"))  # connect carried the session over: it goes on
    assert _answers(lines, 9)[9]["result"] == {}


def test_a_server_that_stops_reading_its_stdin_is_logged_and_restarted(env: Env, raw: Callable[..., Raw]) -> None:
    """More than max_message_bytes unread on its stdin: what is sent to it is lost, so the session is over.
    The shim gave up on its stdin without a word, status said ready, and every request timed out until
    three pings had failed (90 s by default)."""
    server = tiny_server(max_message_bytes=MiB, backoff_base=0.2, backoff_max=0.5)
    env.write_config({"demo": {**server, "args": [server["args"][0], "--stop-reading"]}})
    assert env.run("start", "demo").returncode == 0
    pid = env.status("demo")["pid"]
    client = raw()
    echoes = [_line(n, "tools/call", {"name": "echo", "arguments": {"text": "x" * 900_000}}) for n in (2, 3, 4)]
    client.sock.sendall(_line(1, "stall") + b"".join(echoes))
    answers = _answers(_socket_lines(client.sock), 1, 2, 3, 4)
    assert {answer["error"]["data"]["type"] for answer in answers.values()} == {"connection_lost"}
    log = env.paths.log_file("demo").read_text()
    assert "demo left more than 1048576 bytes unread on its stdin (max_message_bytes)" in log
    status = settle(env, "demo", lambda s: s["state"] == "ready" and s["pid"] != pid)
    assert "demo left more than 1048576 bytes unread on its stdin" in status["last_failure"]["message"]
