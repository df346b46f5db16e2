"""One warm server for every client: the shim's multiplexer, with real clients.

Raw JSON-RPC clients of the shim's socket check the routing rules exactly (ids, progress tokens,
cancellation, broadcasts); the mcp SDK's own client, through `mcpctl connect`, checks that a real MCP
client works unchanged.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.conftest import Env, fixture_server, wait_for


class Raw:
    """A JSON-RPC client of a shim's socket that shows every line it gets."""

    def __init__(self, env: Env, name: str = "demo") -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(env.paths.socket(name)))
        self.sock.settimeout(15)
        self.buffer = b""
        self.seen: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")

    def receive(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the shim closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        self.seen.append(message)
        return message

    def answer(self, request_id: Any) -> dict[str, Any]:
        """Read until the response to `request_id`; notifications on the way are kept in `seen`."""
        while True:
            message = self.receive()
            if message.get("id") == request_id and "method" not in message:
                return message

    def call(self, request_id: Any, tool: str, arguments: dict[str, Any], **meta: Any) -> None:
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        self.send({"id": request_id, "method": "tools/call", "params": params})

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(env: Env) -> Iterator[Callable[..., Raw]]:
    """Makes raw clients of the shim's socket, and closes them after the test."""
    made: list[Raw] = []

    def make(name: str = "demo") -> Raw:
        made.append(Raw(env, name))
        return made[-1]

    yield make
    for client in made:
        client.close()


def _start(world: Env, **settings: Any) -> None:
    world.write_config({"demo": fixture_server("healthy", **settings)})
    proc = world.run("start", "demo")
    assert proc.returncode == 0, proc.stderr


def _text(result: dict[str, Any]) -> str:
    return "".join(item.get("text", "") for item in result["result"]["content"])


# -- routing, with raw clients ---------------------------------------------------------------------


def test_initialize_is_answered_by_the_shim_with_negotiation(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env)
    client = raw()
    for request_id, (wanted, expected) in enumerate(
        [("2025-06-18", "2025-06-18"), ("2099-01-01", "2025-11-25"), ("2024-11-05", "2024-11-05")]
    ):
        client.send({"id": request_id, "method": "initialize", "params": {"protocolVersion": wanted}})
        result = client.answer(request_id)["result"]
        assert result["protocolVersion"] == expected
        assert result["serverInfo"]["name"] == "fixture"
        assert "tools" in result["capabilities"]
    client.send({"method": "notifications/initialized"})  # swallowed: the session was initialized long ago
    client.send({"id": "d", "method": "server/discover"})  # the dual-era server is served in the modern era
    assert client.answer("d")["result"]["supportedVersions"] == ["2026-07-28"]
    client.send({"id": "s", "method": "mcpctl/status"})  # control is not served on the MCP socket
    assert client.answer("s")["error"]["code"] == -32601
    assert not [m for m in client.seen if "method" in m]  # nothing unasked for arrived


def test_same_ids_and_progress_tokens_from_two_clients_stay_apart(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env)
    first, second = raw(), raw()
    # Both use request id 1 and progress token "t": the shim must rewrite both on the way up.
    first.call(1, "slow", {"seconds": 0.6, "steps": 3}, progressToken="t")
    second.call(1, "slow", {"seconds": 0.5, "steps": 5}, progressToken="t")
    assert _text(first.answer(1)) == "slept 0.6"
    assert _text(second.answer(1)) == "slept 0.5"
    for client, steps in ((first, 3), (second, 5)):
        progress = [m["params"] for m in client.seen if m.get("method") == "notifications/progress"]
        assert [p["progress"] for p in progress] == list(range(1, steps + 1))
        assert {p["progressToken"] for p in progress} == {"t"}
        assert {p["total"] for p in progress} == {steps}


def test_a_client_that_disconnects_mid_request_does_not_disturb_the_others(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env)
    pid = env.status("demo")["pid"]
    leaving, staying = raw(), raw()
    leaving.call(1, "slow", {"seconds": 1.0, "steps": 4}, progressToken=1)
    assert leaving.receive()["method"] == "notifications/progress"  # its request is in flight
    leaving.close()
    for n in range(20):
        staying.call(n, "echo", {"text": f"still here {n}"})
        assert _text(staying.answer(n)) == f"still here {n}"
    time.sleep(1.0)  # the abandoned request finishes (or is cancelled) upstream; nobody to answer
    staying.call("after", "echo", {"text": "after"})
    assert _text(staying.answer("after")) == "after"
    assert env.status("demo")["pid"] == pid
    assert env.status("demo")["state"] == "ready"
    log = (env.paths.logs / "demo.log").read_text()
    assert "internal error" not in log


def test_a_client_that_never_reads_does_not_block_another(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env)
    hog, other = raw(), raw()
    big = "x" * 200_000
    for n in range(30):  # ~6 MB of answers that nobody reads: far more than a socket buffer holds
        hog.call(n, "echo", {"text": big})
    started = time.monotonic()
    for n in range(5):
        other.call(n, "echo", {"text": "quick"})
        assert _text(other.answer(n)) == "quick"
    assert time.monotonic() - started < 5.0
    assert len(_text(hog.answer(0))) == len(big)  # and the hog still gets its answers when it reads


def test_list_changed_is_broadcast_to_every_client(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env)
    caller, bystander = raw(), raw()
    bystander.send({"id": "p", "method": "ping"})
    bystander.answer("p")  # connected and known to the shim before the notification
    caller.call(1, "changed", {})
    assert _text(caller.answer(1)) == "notified"
    if not any(m.get("method") == "notifications/tools/list_changed" for m in caller.seen):
        assert caller.receive()["method"] == "notifications/tools/list_changed"  # a listen event: maybe after
    note = bystander.receive()
    assert note["method"] == "notifications/tools/list_changed"


def test_server_requests_go_to_a_capable_client_or_get_no_roots(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env, protocol="legacy")  # server-to-client requests are the legacy era's (the modern one has none)
    able, unable = raw(), raw()
    able.send(
        {"id": "i", "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {"roots": {}}}}
    )
    able.answer("i")
    unable.send({"id": "i", "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}}})
    unable.answer("i")
    able.call(1, "roots", {})
    request = able.receive()
    assert request["method"] == "roots/list"
    able.send({"id": request["id"], "result": {"roots": [{"uri": "file:///able"}]}})
    assert _text(able.answer(1)) == "file:///able"
    # A roots request made while only a client without the capability is busy still reaches a capable one
    # (the one that declared it), never the one that cannot answer.
    unable.call(2, "roots", {})
    request = able.receive()
    assert request["method"] == "roots/list"
    able.send({"id": request["id"], "result": {"roots": [{"uri": "file:///able-again"}]}})
    assert _text(unable.answer(2)) == "file:///able-again"
    able.close()
    unable.call(3, "roots", {})  # now nobody can answer: the shim tells the server there are no roots
    answer = unable.answer(3)
    assert (_text(answer), answer["result"].get("isError")) == ("", False), answer


def test_a_crash_mid_call_is_retryable_and_retried_only_when_repeatable(env: Env, raw: Callable[..., Raw]) -> None:
    ok_file = env.workdir / "crashed-once"
    _start(env, backoff_base=0.2, env={"OK_FILE": str(ok_file)})
    client = raw()
    client.call(1, "crash", {})
    error = client.answer(1)["error"]
    assert error["data"]["type"] == "connection_lost"
    assert error["data"]["retryable"] is True
    assert "exited" in error["message"] or "demo" in error["message"]
    # The same connection keeps working: requests wait while the server restarts, then go through.
    client.call(2, "crash", {})
    assert _text(client.answer(2)) == "survived"
    # `mcpctl call` does not send a call lost in flight again unless the tool is marked read-only or
    # idempotent: `crash` may have done its work (it did: the file is back), so it is said, exit 11.
    ok_file.unlink()
    proc = env.run("call", "demo", "crash")
    assert proc.returncode == 11, proc.stderr
    said, hint = proc.stderr.splitlines()  # no retry lines before them
    assert said.startswith(
        "error: lost the connection to demo with the call of crash in flight: demo exited unexpectedly (exit code 7)"
    )
    assert hint == (
        "hint: not retried: crash may have run (it is not marked read-only or idempotent); see `mcpctl logs demo`,"
        " then call it again if it did not"
    )
    assert ok_file.exists()
    # `peek` is the same tool marked read-only: lost in flight, it is retried, and the retry reaches the new server.
    ok_file.unlink()
    proc = env.run("call", "demo", "peek")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "survived"
    assert "lost the connection" in proc.stderr
    assert "retry 1 of 3" in proc.stderr
    assert wait_for(lambda: env.status("demo")["restarts"] == 3, timeout=20)


def test_requests_sent_while_the_server_starts_wait_for_it(env: Env, raw: Callable[..., Raw]) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    assert env.run("start", "demo", "--no-wait").returncode == 0
    socket_path = env.paths.socket("demo")
    wait_for(socket_path.exists)
    client = raw()
    client.send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}})
    client.call(2, "echo", {"text": "early"})
    assert client.answer(1)["result"]["serverInfo"]["name"] == "fixture"
    assert _text(client.answer(2)) == "early"


def test_garbage_on_the_socket_gets_a_parse_error_and_the_connection_lives(env: Env, raw: Callable[..., Raw]) -> None:
    _start(env)
    client = raw()
    client.sock.sendall(b"this is not json\n\xff\xfe\n[1,2]\n")
    errors = [client.receive() for _ in range(3)]
    assert [e["error"]["code"] for e in errors] == [-32700, -32700, -32700]
    client.call(1, "echo", {"text": "fine"})
    assert _text(client.answer(1)) == "fine"


# -- real MCP clients through `mcpctl connect` -----------------------------------------------------


def _connect_params(env: Env, *extra: str) -> StdioServerParameters:
    environment = {"MCPCTL_HOME": str(env.home), "NO_COLOR": "1"}
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpctl", "-f", str(env.config), "connect", "demo", *extra],
        env=environment,
        cwd=str(env.workdir),
    )


def test_sdk_client_through_connect_starts_the_server_and_calls_tools(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy")})

    async def use() -> tuple[list[str], str, float]:
        with open(env.workdir / "connect.err", "w") as errlog:
            async with (
                stdio_client(_connect_params(env), errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                listed = await session.list_tools()
                echoed = await session.call_tool("echo", {"text": "through the shim"})
                added = await session.call_tool("add", {"a": 2, "b": 0.5})
                assert isinstance(echoed, types.CallToolResult)
                assert isinstance(added, types.CallToolResult)
                text = echoed.content[0]
                assert isinstance(text, types.TextContent)
                assert added.structured_content is not None
                return [t.name for t in listed.tools], text.text, added.structured_content["result"]

    names, text, total = anyio.run(use)
    assert {"echo", "add", "slow"} <= set(names)
    assert text == "through the shim"
    assert total == 2.5
    assert "starting demo" in (env.workdir / "connect.err").read_text()
    assert len(env.servers_running("healthy")) == 1
    assert env.status("demo")["state"] == "ready"  # the server outlives the client


def test_ten_concurrent_sdk_clients_share_one_server(env: Env) -> None:
    _start(env)
    answers: dict[int, list[str]] = {}
    pids: set[int] = set()

    async def client(number: int) -> None:
        async with stdio_client(_connect_params(env)) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            got = []
            for call in range(10):
                result = await session.call_tool("echo", {"text": f"client {number} call {call}"})
                got.append("".join(c.text for c in result.content if isinstance(c, types.TextContent)))
            answers[number] = got
            pid_result = await session.call_tool("pid", {})
            assert pid_result.structured_content is not None
            pids.add(int(pid_result.structured_content["result"]))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for number in range(10):
                group.start_soon(client, number)

    anyio.run(main)
    assert answers == {n: [f"client {n} call {c}" for c in range(10)] for n in range(10)}
    assert len(pids) == 1
    assert len(env.servers_running("healthy")) == 1
    assert pids == {env.status("demo")["pid"]}


def test_sdk_client_gets_progress_and_answers_roots_requests(env: Env) -> None:
    _start(env, protocol="legacy")  # server-to-client requests are the legacy era's
    progress: list[float] = []

    async def list_roots(_context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///sdk-client")])

    async def on_progress(value: float, _total: float | None, _message: str | None) -> None:
        progress.append(value)

    async def use() -> str:
        async with (
            stdio_client(_connect_params(env)) as (read, write),
            ClientSession(read, write, list_roots_callback=list_roots) as session,
        ):
            await session.initialize()
            await session.call_tool("slow", {"seconds": 0.3, "steps": 3}, progress_callback=on_progress)
            result = await session.call_tool("roots", {})
            return "".join(c.text for c in result.content if isinstance(c, types.TextContent))

    assert anyio.run(use) == "file:///sdk-client"
    assert progress == [1, 2, 3]


SLOW = {"seconds": 0.3, "steps": 1}


def test_connect_drain_as_a_pipe_answers_and_exits_when_input_ends(env: Env) -> None:
    """--drain: the end of stdin waits for the answers in flight (without it, that is a disconnect:
    tests/test_disconnect.py)."""
    _start(env)
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "slow", "arguments": {"seconds": 0.3, "steps": 1}},
        },
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "mcpctl", "connect", "demo", "--drain"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=env.workdir,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["id"] for a in answers] == [1, 2]  # the slow answer came although stdin ended first
    assert answers[1]["result"]["content"][0]["text"] == "slept 0.3"


def test_connect_no_start_refuses_a_stopped_server(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    proc = env.run("connect", "demo", "--no-start")
    assert proc.returncode == 3
    assert "demo is not running" in proc.stderr
    assert proc.stdout == ""
    assert env.servers_running() == []


def test_connect_outlives_a_stop_and_says_the_server_is_not_running(env: Env) -> None:
    """The client keeps its stdio session: a request while the server is stopped gets an error naming why."""
    _start(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "connect", "demo"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=env.workdir,
    )
    assert proc.stdin is not None
    proc.stdin.write(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
    proc.stdin.flush()
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline())["id"] == 1
    assert env.run("stop", "demo").returncode == 0
    proc.stdin.write(b'{"jsonrpc":"2.0","id":2,"method":"ping"}\n')
    proc.stdin.flush()
    error = json.loads(proc.stdout.readline())["error"]
    assert error["message"] == "demo is not running"
    assert error["data"]["hint"] == "start it with `mcpctl start demo`"
    assert env.servers_running() == []  # a server a person stopped is not started again
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    for pipe in (proc.stdout, proc.stderr):
        assert pipe is not None
        pipe.close()


# -- the client commands ---------------------------------------------------------------------------


def test_tools_call_and_ping_commands(env: Env) -> None:
    _start(env)
    listed = env.json("tools", "demo")
    echo = next(t for t in listed["tools"] if t["name"] == "echo")
    assert echo["inputSchema"]["required"] == ["text"]
    table = env.run("tools", "demo").stdout
    assert "add" in table
    assert "a*: integer, b*: number, negate: boolean" in table

    assert env.run("call", "demo", "add", "a=2", "b=0.25", "negate=true").stdout.strip() == "-2.25"
    tagged = env.run("call", "demo", "tag", 'items=["x","y"]', 'meta={"k": 3}')
    assert json.loads(tagged.stdout) == {"count": 2, "items": ["x", "y"], "meta": {"k": 3}}
    assert env.run("call", "demo", "echo", "--args", '{"text": "from json"}').stdout == "from json\n"
    full = env.json("call", "demo", "echo", "text=hi")
    assert full["result"]["content"] == [{"type": "text", "text": "hi"}]
    assert full["result"]["isError"] is False

    failed = env.run("call", "demo", "fail", "reason=testing")
    assert failed.returncode == 10
    assert failed.stdout == ""
    assert failed.stderr.strip()

    pong = env.json("ping", "demo")
    assert pong["ok"] is True
    assert pong["latency_ms"] > 0
    assert env.run("ping", "demo").stdout.startswith("demo: pong in ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "a=1.5", "b=1"], "a='1.5' is not an integer"),
        (["add", "a=1", "b=x"], "b='x' is not a number"),
        (["add", "a=1", "b=2", "negate=perhaps"], "negate='perhaps' is not a boolean"),
        (["add", "a=1"], "add needs b: pass b=..."),
        (["add", "a=1", "b=2", "c=3"], "add has no argument 'c' (it takes: a, b, negate)"),
        (["add", "a1"], "argument 'a1' is not key=value"),
        (["tag", "items=notjson", "meta={}"], "items='notjson' is not a JSON array"),
        (["echo", "--args", "[1]"], "--args must be a JSON object"),
        (["nope"], "demo has no tool 'nope' (it has: add, blob, changed, crash, echo"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_sent(env: Env, args: list[str], message: str) -> None:
    _start(env)
    proc = env.run("call", "demo", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stderr.count("\n") == 2  # one line of error, one of hint
    events = (env.paths.servers / "demo" / "events.jsonl").read_text()
    assert "restarted" not in events


def test_call_starts_the_server_unless_no_start(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    refused = env.run("call", "demo", "echo", "text=x", "--no-start")
    assert refused.returncode == 3
    assert env.servers_running() == []
    unknown = env.run("call", "nosuch", "echo", "text=x")
    assert unknown.returncode == 8
    started = env.run("call", "demo", "echo", "text=warm now")
    assert started.returncode == 0, started.stderr
    assert started.stdout == "warm now\n"
    assert "starting demo" in started.stderr
    assert env.status("demo")["state"] == "ready"


def test_call_reports_a_server_that_cannot_start(env: Env) -> None:
    env.write_config({"demo": fixture_server("crash", restart="never")})
    proc = env.run("call", "demo", "echo", "text=x", "--json")
    assert proc.returncode == 4
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "exited_during_startup"
    assert error["hint"]


def test_call_times_out_with_a_clear_error(env: Env) -> None:
    _start(env)
    proc = env.run("call", "demo", "slow", "seconds=5", "steps=1", "--timeout", "0.5")
    assert proc.returncode == 11
    assert "timed out after 0.5s" in proc.stderr
    assert "raise --timeout" in proc.stderr
    # The abandoned request did not wedge the session.
    assert env.run("call", "demo", "echo", "text=next").stdout == "next\n"


def test_an_http_server_is_relayed_too(env: Env) -> None:
    port = _free_port()
    env.write_config(
        {"web": {**fixture_server("http"), "url": f"http://127.0.0.1:{port}/mcp", "env": {"FIXTURE_PORT": str(port)}}}
    )
    assert env.run("start", "web").returncode == 0
    assert env.run("call", "web", "echo", "text=over http").stdout == "over http\n"
    assert env.run("call", "web", "add", "a=1", "b=2").stdout == "3.0\n"
    pong = env.json("ping", "web")
    assert pong["ok"] is True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connect_does_not_import_the_sdk(env: Env) -> None:
    _start(env)
    proc = subprocess.run(  # -X importtime lists every import as it happens
        [sys.executable, "-X", "importtime", "-m", "mcpctl", "ping", "demo"],
        capture_output=True,
        text=True,
        cwd=env.workdir,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "mcpctl.hot.session" in imported
    assert not {name for name in imported if name == "mcp" or name.startswith("mcp.")}
