"""The HTTP gateway, end to end: real shims, real servers, the SDK's streamable HTTP client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import Any

import anyio
import mcp_types
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Env, fixture_server, third_party_server, tiny_server, wait_for
from tests.gateway_helpers import (
    INITIALIZE,
    configure,
    delete,
    get_stream,
    http,
    one_server,
    open_session,
    rpc,
    sdk_client,
    start_gateway,
    take_a_slot,
    text,
    token,
    with_session,
)
from tests.test_client_state import resourceful


def test_the_sdk_client_lists_and_calls_a_server_with_progress_and_metrics_count_it(env: Env) -> None:
    base = configure(env, {"everything": third_party_server("server-everything")})
    start_gateway(env)
    bearer = token(env, "ci", "--servers", "everything")
    progress: list[float] = []

    async def act(session: Any) -> tuple[list[str], str, str]:
        tools = [tool.name for tool in (await session.list_tools()).tools]
        echo = text(await session.call_tool("echo", {"message": "hello"}))

        async def noted(done: float, total: float | None, message: str | None) -> None:
            progress.append(done)

        args = {"duration": 1, "steps": 3}
        slow = text(await session.call_tool("trigger-long-running-operation", args, progress_callback=noted))
        return tools, echo, slow

    tools, echo, slow = with_session(f"{base}/servers/everything/mcp", bearer, act)
    assert "echo" in tools
    assert "trigger-long-running-operation" in tools
    assert echo == "Echo: hello"
    assert "completed" in slow
    assert progress == [1.0, 2.0, 3.0]
    status, _, body = http(f"{base}/metrics", bearer)
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    up = [s for s in families["mcpctl_server_up"].samples if s.labels == {"server": "everything"}]
    assert up
    assert up[0].value == 1.0
    calls = [s for s in families["mcpctl_gateway_requests"].samples if s.name.endswith("_total")]
    assert any(
        s.labels == {"server": "everything", "method": "tools/call", "outcome": "ok"} and s.value == 2 for s in calls
    )
    assert any(s.labels.get("server") == "everything" for s in families["mcpctl_server_memory_bytes"].samples)
    assert "mcpctl_gateway_request_duration_seconds" in families
    assert "mcpctl_gateway_sessions" in families


def test_tokens_and_origins_are_checked_on_every_request(env: Env) -> None:
    base = configure(env, {"a": fixture_server("healthy"), "b": fixture_server("healthy")})
    start_gateway(env)
    url = f"{base}/servers/a/mcp"
    good = token(env, "good", "--servers", "a")
    other = token(env, "other", "--servers", "b")
    gone = token(env, "gone")
    short = token(env, "short", "--expires", "1s")
    assert env.run("token", "revoke", "gone").returncode == 0
    time.sleep(1.2)
    for bearer, why in (
        (None, ""),
        (gone, "revoked"),
        (short, "expired"),
        ("mcpctl_000000000000_" + "x" * 43, "unknown"),
    ):
        status, headers, body = http(url, bearer, INITIALIZE)
        assert status == 401, (why, status, body)
        assert headers["www-authenticate"].startswith('Bearer realm="mcpctl-gateway"')
        assert why in headers["www-authenticate"]
    assert http(url, other, INITIALIZE)[0] == 403
    assert http(f"{base}/mcp", good, INITIALIZE)[0] == 403  # a token of one server is not the aggregate's
    assert http(url, good, INITIALIZE, {"Origin": "https://evil.example"})[0] == 403
    assert http(url, good, INITIALIZE, {"Host": "evil.example:80"})[0] == 403
    status, headers, body = http(url, good, INITIALIZE, {"Origin": "http://localhost"})
    assert status == 200
    assert headers["mcp-session-id"]
    assert json.loads(body)["result"]["serverInfo"]
    listed = json.loads(env.run("token", "list", "--json").stdout)["tokens"]
    assert {t["name"]: t["state"] for t in listed} == {
        "good": "active",
        "other": "active",
        "gone": "revoked",
        "short": "expired",
    }
    assert (env.paths.gateway_dir / "tokens.json").stat().st_mode & 0o777 == 0o600
    assert good not in (env.paths.gateway_dir / "tokens.json").read_text()


def _scraped(base: str, bearer: str) -> dict[str, set[str]]:
    """Each family of /metrics as scraped with `bearer`: the servers its samples name ("" for no server label)."""
    status, _, body = http(f"{base}/metrics", bearer)
    assert status == 200, body
    families = text_string_to_metric_families(body.decode())
    return {family.name: {s.labels.get("server", "") for s in family.samples} for family in families}


def test_a_scoped_token_reads_the_metrics_of_its_own_servers_only(env: Env) -> None:
    servers = {"a": tiny_server(), "b": tiny_server(), "c": tiny_server()}
    base = configure(env, servers, groups={"g": {"servers": ["b"]}})
    start_gateway(env)
    everyone = token(env, "all")
    for name in servers:  # a request each (the first one starts the server), so every server has request counters
        status, headers, _ = http(f"{base}/servers/{name}/mcp", everyone, INITIALIZE)
        assert status == 200
        listed = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        assert (
            http(f"{base}/servers/{name}/mcp", everyone, listed, {"Mcp-Session-Id": headers["mcp-session-id"]})[0]
            == 200
        )
    whole = _scraped(base, everyone)
    for family in ("mcpctl_server_up", "mcpctl_server_state", "mcpctl_gateway_requests"):
        assert whole[family] == {"a", "b", "c"}, (family, whole[family])
    for bearer, seen in ((token(env, "one", "--servers", "a"), {"a"}), (token(env, "grp", "--group", "g"), {"b"})):
        scoped = _scraped(base, bearer)
        assert scoped.keys() == whole.keys()  # the same families: the names of the series are no secret
        named = set().union(*scoped.values()) - {""}
        assert named == seen, named  # no sample of any family names a server outside the token's scope
        for family in ("mcpctl_server_up", "mcpctl_server_state", "mcpctl_gateway_requests"):
            assert scoped[family] == seen, (family, scoped[family])
        assert scoped["mcpctl_gateway_sessions"] == {""}  # gateway-wide series, naming no server, stay


def _names(message: Any) -> str:
    root = getattr(message, "root", message)
    return str(getattr(root, "method", ""))


def test_the_aggregate_renames_colliding_tools_routes_calls_and_follows_its_members(env: Env) -> None:
    servers = {
        "everything": third_party_server("server-everything"),
        "fix": fixture_server("healthy", tools={"deny": ["crash", "shout"]}),
    }
    base = configure(env, servers)
    assert env.run("start", "--all").returncode == 0  # starts the gateway too
    assert json.loads(env.run("gateway", "status", "--json").stdout)["gateway"]["running"]
    bearer = token(env, "all")
    heard: list[str] = []

    async def changed(after: int) -> None:
        while sum(name == "notifications/tools/list_changed" for name in heard) <= after:
            await asyncio.sleep(0.05)

    async def act(session: Any) -> dict[str, Any]:
        names = [tool.name for tool in (await session.list_tools()).tools]
        found: dict[str, Any] = {"names": names}
        found["everything"] = text(await session.call_tool("everything__echo", {"message": "one"}))
        found["fix"] = text(await session.call_tool("fix__echo", {"text": "two"}))
        seen = len(heard)
        assert (await asyncio.to_thread(env.run, "stop", "fix")).returncode == 0
        await asyncio.wait_for(changed(sum(n == "notifications/tools/list_changed" for n in heard[:seen])), 30)
        found["without"] = [tool.name for tool in (await session.list_tools()).tools]
        seen = sum(n == "notifications/tools/list_changed" for n in heard)
        assert (await asyncio.to_thread(env.run, "start", "fix")).returncode == 0
        await asyncio.wait_for(changed(seen), 30)
        found["back"] = [tool.name for tool in (await session.list_tools()).tools]
        return found

    found = with_session(f"{base}/mcp", bearer, act, lambda message: heard.append(_names(message)))
    names = found["names"]
    assert len(names) == len(set(names))
    assert all(len(n) <= 64 and n.replace("_", "").replace("-", "").isalnum() for n in names)
    assert "everything__echo" in names
    assert "fix__echo" in names
    assert "echo" not in names
    assert "pid" in names
    assert "get-sum" in names
    assert "crash" not in names
    assert "shout" not in names
    assert found["everything"] == "Echo: one"
    assert found["fix"] == "two"
    assert "pid" not in found["without"]
    assert "echo" in found["without"]  # no collision left: the plain name
    assert "fix__echo" in found["back"]
    assert "pid" in found["back"]


def test_a_restart_of_the_server_keeps_the_http_session(env: Env) -> None:
    base = configure(env, {"fix": fixture_server("healthy")})
    start_gateway(env)
    bearer = token(env, "t")

    async def act(session: Any) -> tuple[str, str]:
        before = text(await session.call_tool("pid", {}))
        assert (await asyncio.to_thread(env.run, "restart", "fix")).returncode == 0
        after = text(await session.call_tool("pid", {}))
        return before, after

    before, after = with_session(f"{base}/servers/fix/mcp", bearer, act)
    assert before.isdigit()
    assert after.isdigit()
    assert before != after


def test_twenty_concurrent_clients_get_their_own_answers(env: Env) -> None:
    base = configure(env, {"fix": fixture_server("healthy")})
    start_gateway(env)
    bearer = token(env, "t")
    assert env.run("start", "fix").returncode == 0

    async def client(number: int) -> str:
        import httpx2
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        headers = {"Authorization": f"Bearer {bearer}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=120) as http_client,
            streamable_http_client(f"{base}/servers/fix/mcp", http_client=http_client) as (read, write, *_),
            ClientSession(read, write, read_timeout_seconds=120) as session,
        ):
            await session.initialize()
            return text(await session.call_tool("echo", {"text": f"client {number}"}))

    async def crowd() -> list[str]:
        return list(await asyncio.gather(*(client(n) for n in range(20))))

    assert asyncio.run(crowd()) == [f"client {n}" for n in range(20)]


def test_gateway_stop_leaves_no_listener_and_the_servers_running(env: Env) -> None:
    base = configure(env, {"fix": fixture_server("healthy")})
    start_gateway(env)
    port = int(base.rsplit(":", 1)[1])
    bearer = token(env, "t")
    status, _, _ = http(f"{base}/servers/fix/mcp", bearer, INITIALIZE)  # starts fix on the first request
    assert status == 200
    assert http(f"{base}/healthz")[0] == 200
    assert http(f"{base}/readyz")[0] == 200
    stopped = json.loads(env.run("gateway", "stop", "--json").stdout)["gateway"]
    assert stopped["outcome"] == "stopped"
    assert not stopped["running"]
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))
    assert env.status("fix")["state"] == "ready"
    assert env.run("gateway", "status").returncode == 3
    events = [json.loads(line)["event"] for line in (env.paths.gateway_dir / "events.jsonl").read_text().splitlines()]
    assert events == ["ready", "stopped"]


def test_stop_all_stops_the_gateway_start_all_started(env: Env) -> None:
    base = configure(env, {"tiny": tiny_server()})
    port = int(base.rsplit(":", 1)[1])
    started = env.run("start", "--all")
    assert started.returncode == 0, started.stderr
    assert f"gateway started: {base}" in started.stderr
    stopped = env.run("stop", "--all")
    assert stopped.returncode == 0, stopped.stderr
    assert f"gateway stopped: {base}" in stopped.stderr  # reported as start --all reports it
    assert env.run("gateway", "status").returncode == 3
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))
    assert env.our_processes() == []  # nothing with our MCPCTL_HOME left, the gateway included
    again = env.run("stop", "--all")  # no gateway: nothing said of it
    assert (again.returncode, "gateway" in again.stderr) == (0, False)


def test_a_gateway_reachable_from_other_machines_needs_tls_or_insecure(env: Env) -> None:
    env.config.write_text('[gateway]\nlisten = "0.0.0.0:8765"\n[servers.a]\ncommand = "x"\n')
    proc = env.run("gateway", "start")
    assert proc.returncode == 2
    assert "gateway.listen: 0.0.0.0:8765 is reachable from other machines" in proc.stderr


def test_doctor_knows_a_gateway_that_died(env: Env) -> None:
    configure(env, {"fix": fixture_server("healthy")})
    start_gateway(env)
    pid = json.loads(env.run("gateway", "status", "--json").stdout)["gateway"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: env.run("gateway", "status").returncode == 3, timeout=20)
    proc = env.run("doctor", "--json")
    findings = json.loads(proc.stdout)["findings"]
    assert any(f["kind"] == "state_mismatch" and "gateway" in f["detail"] for f in findings), findings


def test_an_aggregate_lists_without_a_member_that_refuses_the_connection(env: Env) -> None:
    base = configure(env, {"full": tiny_server(max_clients=1), "fix": fixture_server("healthy")})
    assert env.run("start", "--all").returncode == 0
    bearer = token(env, "all")
    with take_a_slot(env.paths.socket("full")):
        session, _ = open_session(f"{base}/mcp", bearer)
        status, answer = rpc(f"{base}/mcp", bearer, session, "tools/list")  # it hung for ever
        assert status == 200, answer
        assert "pid" in [tool["name"] for tool in answer["result"]["tools"]]
        session, answer = open_session(f"{base}/servers/full/mcp", bearer)
    assert session is None
    assert answer["error"]["data"]["type"] == "too_many_clients", answer  # not "the connection was lost"
    assert "full has 1 clients connected" in answer["error"]["message"]


def test_a_server_the_gateway_cannot_reach_is_typed_as_connect_types_it(env: Env) -> None:
    servers = {"bad": {"command": "/nonexistent/cmd"}, "off": tiny_server()}
    base = configure(env, servers, gateway={"auto_start": False})
    start_gateway(env)
    bearer = token(env, "all")
    _, off = open_session(f"{base}/servers/off/mcp", bearer)
    assert off["error"]["message"] == "off is not running", off  # no socket path of the state dir
    assert off["error"]["data"] == {
        "type": "not_running",
        "retryable": False,
        "hint": "start it with `mcpctl start off`",
    }
    assert str(env.home) not in json.dumps(off)
    assert env.run("gateway", "stop").returncode == 0
    base = configure(env, servers)  # auto_start: the start's own failure, not "connection lost, retry"
    start_gateway(env)
    _, bad = open_session(f"{base}/servers/bad/mcp", bearer)
    assert bad["error"]["message"] == "command not found: /nonexistent/cmd", bad
    assert bad["error"]["data"]["type"] == "command_not_found"
    assert bad["error"]["data"]["retryable"] is False


def test_a_token_name_that_reads_as_a_token_id_is_refused(env: Env) -> None:
    configure(env, {"a": tiny_server()})
    proc = env.run("token", "create", "one", "--json")
    assert proc.returncode == 0, proc.stderr
    taken = json.loads(proc.stdout)["token"]["id"]
    proc = env.run("token", "create", taken)  # `token revoke ID` revoked both
    assert proc.returncode == 2
    assert f"invalid token name {taken!r}: 12 hex digits are a token's id" in proc.stderr
    assert env.run("token", "create", "5cfb95aa37f7").returncode == 2
    assert env.run("token", "create", "5cfb95aa37f7x").returncode == 0


def test_tls_files_that_do_not_load_are_named_before_the_gateway_starts(env: Env) -> None:
    configure(env, {"a": tiny_server()}, gateway={"tls_cert": "nope.pem", "tls_key": "key.pem"})
    (env.workdir / "key.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    both = [
        f"error: {env.config}: gateway.tls_cert: cannot read {env.workdir / 'nope.pem'}: No such file or directory",
        f"error: {env.config}: gateway.tls_key: {env.workdir / 'key.pem'} holds no PEM private key",  # swapped
    ]
    for command in (("gateway", "start"), ("config", "validate")):
        proc = env.run(*command)
        assert proc.returncode == 2, (command, proc.stderr)  # the gateway exited "before it was ready" (4)
        said = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert said == both, command  # gateway start named the first only
    started = env.json("gateway", "start", expect=2)
    assert started["error"]["details"] == [line.removeprefix("error: ") for line in both]
    (env.workdir / "nope.pem").write_text((env.workdir / "key.pem").read_text())
    (env.workdir / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    proc = env.run("gateway", "start")
    assert proc.returncode == 2
    assert f"gateway.tls_key: {env.workdir / 'key.pem'} does not load as the key of" in proc.stderr
    assert env.run("gateway", "status").returncode == 3


def test_a_config_the_gateway_cannot_load_is_a_config_error_as_the_cli_s_own(env: Env) -> None:
    # The gateway reads the config again, from cwd /: -f /proc/self/cwd/mcpctl.toml is the workdir's file to
    # the CLI and /mcpctl.toml (none) to the gateway, as a file changed between the two loads would differ.
    configure(env, {"a": tiny_server()})
    assert not os.path.exists("/mcpctl.toml")
    proc = env.run("-f", "/proc/self/cwd/mcpctl.toml", "gateway", "start")
    assert proc.returncode == 2, proc.stderr  # 4: the gateway "failed" untyped, read as a start failure
    said = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert said == ["error: /proc/self/cwd/mcpctl.toml: cannot read config: No such file or directory"]
    error = env.json("-f", "/proc/self/cwd/mcpctl.toml", "gateway", "start", expect=2)["error"]
    assert (error["type"], error["details"]) == ("config_invalid", [said[0].removeprefix("error: ")])
    assert env.run("gateway", "status").returncode == 3


def _connections(base: str, bearer: str) -> float:
    _, _, body = http(f"{base}/metrics", bearer)
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    return float(families["mcpctl_gateway_connections"].samples[0].value)


def test_delete_a_second_get_and_a_revoked_token_end_the_session_streams(env: Env) -> None:
    base = configure(env, {"a": tiny_server()}, gateway={"metrics_public": True})
    start_gateway(env)
    url, bearer = f"{base}/servers/a/mcp", token(env, "gone")
    session, _ = open_session(url, bearer)
    assert session is not None
    first = get_stream(url, bearer, session)
    second = get_stream(url, bearer, session)
    first.result(timeout=20)  # the second GET takes over: the first ends (it lived on)
    assert delete(url, bearer, session) == 204
    second.result(timeout=20)  # DELETE ends the session's stream (it lived on)
    assert wait_for(lambda: _connections(base, bearer) == 0)
    session, _ = open_session(url, bearer)
    assert session is not None
    third = get_stream(url, bearer, session)
    assert env.run("token", "revoke", "gone").returncode == 0
    third.result(timeout=20)  # a revoked token hears no more of the servers (it kept the stream)
    assert delete(url, bearer, session) == 401


def test_a_token_opens_at_most_max_sessions_so_it_takes_no_server_from_the_others(env: Env) -> None:
    base = configure(env, {"a": tiny_server(max_clients=4)}, gateway={"max_sessions": 2})
    start_gateway(env)
    url, greedy, other = f"{base}/servers/a/mcp", token(env, "greedy"), token(env, "other")
    opened = [open_session(url, greedy)[0] for _ in range(2)]
    assert all(opened)
    status, headers, body = http(url, greedy, INITIALIZE)  # it could take every max_clients place of a
    assert status == 429, body
    assert "mcp-session-id" not in {key.lower() for key in headers}
    answer = json.loads(body)
    assert answer["id"] == INITIALIZE["id"]  # the answer to that initialize
    error = answer["error"]
    assert error["message"] == "this token has 2 sessions open, the gateway's max_sessions"
    assert error["data"]["type"] == "too_many_clients"
    assert open_session(url, other)[0] is not None
    assert env.run("ping", "a").returncode == 0
    assert delete(url, greedy, str(opened[0])) == 204
    assert open_session(url, greedy)[0] is not None
    configure(env, {"a": tiny_server()}, gateway={"max_sessions": 0})
    proc = env.run("config", "validate")
    assert proc.returncode == 2
    assert "gateway.max_sessions: expected a whole number of sessions per token, 1 or more" in proc.stderr


def _cancellations(url: str, bearer: str, session: dict[str, str]) -> list[Any]:
    """The request ids of the cancellations the resourceful server got (its `seen` tool)."""
    seen = {"jsonrpc": "2.0", "id": "seen", "method": "tools/call", "params": {"name": "seen", "arguments": {}}}
    status, _, body = http(url, bearer, seen, session)
    assert status == 200, body
    entries = json.loads(json.loads(body)["result"]["content"][0]["text"])
    return [entry[1] for entry in entries if entry[0] == "cancelled"]


def test_a_clients_notifications_cancelled_reaches_the_server_under_the_gateways_id(env: Env) -> None:
    url, bearer, session = one_server(env, "res", resourceful())
    sleep = {
        "jsonrpc": "2.0",
        "id": 11,
        "method": "tools/call",
        "params": {"name": "sleep", "arguments": {"seconds": 25}},
    }
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 11, "reason": "enough"}}
    with ThreadPoolExecutor(1) as pool:
        answered = pool.submit(http, url, bearer, sleep, session)

        def cancelled() -> bool:  # sent again until the request was in flight when one arrived
            assert http(url, bearer, cancel, session)[0] == 202
            return answered.done()

        wait_for(cancelled, timeout=15, interval=0.2)  # the server would answer after 25 s
        status, _, body = answered.result()
    assert status == 200
    assert json.loads(body) == {"jsonrpc": "2.0", "id": 11, "error": {"code": -32800, "message": "Request cancelled"}}
    once = _cancellations(url, bearer, session)
    assert len(once) == 1  # the late cancellations were not sent on: nothing was in flight any more
    assert isinstance(once[0], int)  # the id the request had upstream, not the client's

    async def act(client: Any) -> list[Any]:
        with anyio.move_on_after(1.5):  # the SDK sends notifications/cancelled, as the 2025 era says
            await client.call_tool("sleep", {"seconds": 25})
        with anyio.fail_after(15):  # the session stays open for the answer to the cancelled request too
            while len(seen := json.loads(text(await client.call_tool("seen", {})))) < 2:
                await anyio.sleep(0.1)
        return seen

    assert len(with_session(url, bearer, act)) == 2


def test_server_requests_go_to_a_connect_client_that_can_answer_them_never_to_the_gateway(env: Env) -> None:
    base = configure(env, {"fix": fixture_server("healthy", protocol="legacy")})  # server requests: legacy era
    start_gateway(env)
    bearer = token(env, "t")
    assert env.run("start", "fix").returncode == 0
    asked: list[str] = []

    def roots(uri: str) -> Any:
        async def listed(_context: Any) -> Any:
            asked.append(uri)
            return mcp_types.ListRootsResult(roots=[mcp_types.Root(uri=uri)])

        return listed

    connect = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpctl", "-f", str(env.config), "connect", "fix"],
        env={"MCPCTL_HOME": str(env.home), "NO_COLOR": "1", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        cwd=str(env.workdir),
    )

    async def act(session: Any) -> str:
        async with (
            stdio_client(connect) as (read, write),
            ClientSession(read, write, list_roots_callback=roots("file:///x/sub")) as stdio,
        ):
            await stdio.initialize()
            return text(await session.call_tool("roots", {}))  # the HTTP client's call asks the server's question

    got = with_session(f"{base}/servers/fix/mcp", bearer, act, list_roots_callback=roots("file:///http"))
    assert got == "file:///x/sub"  # the gateway declared no roots, so the shim asked the client that can answer
    assert asked == ["file:///x/sub"]


def test_server_discover_is_method_not_found_in_and_out_of_a_session_and_auto_falls_back(env: Env) -> None:
    url, bearer, session = one_server(env, "tiny", tiny_server())
    discover = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}}
    status, headers, body = http(url, bearer, discover)
    assert status == 404  # the 2026-07-28 era's answer to a method not implemented
    assert json.loads(body)["error"]["code"] == -32601
    assert "mcp-session-id" not in {key.lower() for key in headers}
    status, _, body = http(url, bearer, {**discover, "id": 2}, session)
    assert (status, json.loads(body)["error"]["code"]) == (200, -32601)

    async def auto() -> str:
        async with sdk_client(url, bearer, "auto") as client:  # its probe carries MCP-Protocol-Version 2026-07-28
            await client.list_tools()
            return str(client.session.initialize_result.protocol_version)

    assert asyncio.run(auto()) == "2025-11-25"  # it fell back to initialize


def test_a_protocol_version_header_the_gateway_does_not_serve_is_400(env: Env) -> None:
    url, bearer, session = one_server(env, "tiny", tiny_server())
    ping = {"jsonrpc": "2.0", "id": 3, "method": "ping"}
    status, _, body = http(url, bearer, ping, {**session, "MCP-Protocol-Version": "1999-01-01"})
    assert status == 400
    error = json.loads(body)["error"]
    assert error["code"] == -32022
    assert error["data"]["requested"] == "1999-01-01"
    assert "2025-11-25" in error["data"]["supported"]
    assert http(url, bearer, ping, session)[0] == 200  # no header: the session's own version
    assert http(url, bearer, ping, {**session, "MCP-Protocol-Version": "2025-06-18"})[0] == 200


def test_an_answer_past_64_mib_reaches_the_http_client_within_max_message_bytes(env: Env) -> None:
    url, bearer, session = one_server(env, "fix", fixture_server("healthy"))
    size = 40_000_000  # its answer holds it twice (content and structuredContent): past the old 64 MiB
    blob = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "blob", "arguments": {"size": size}}}
    status, _, body = http(url, bearer, blob, session)
    answer = json.loads(body)
    assert status == 200
    assert "result" in answer, answer
    assert len(answer["result"]["content"][0]["text"]) == size


def test_a_client_that_closes_a_requests_sse_stream_has_not_cancelled_it(env: Env) -> None:
    url, bearer, session = one_server(env, "fix", fixture_server("healthy"))
    params = {"name": "slow", "arguments": {"seconds": 2, "steps": 4}, "_meta": {"progressToken": "p"}}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}
    host, path = url.removeprefix("http://").split("/", 1)
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json", **session}
    headers["Accept"] = "application/json, text/event-stream"
    connection = HTTPConnection(host, timeout=30)
    connection.request("POST", f"/{path}", json.dumps(call), headers)
    answer = connection.getresponse()
    assert answer.getheader("content-type", "").startswith("text/event-stream")
    assert b"notifications/progress" in answer.readline() + answer.readline()  # the first event, then gone
    connection.close()

    def finished() -> bool:  # the call was counted once its answer came, so it ran on (2025-11-25: no cancellation)
        families = text_string_to_metric_families(http(f"{url.split('/servers')[0]}/metrics", bearer)[2].decode())
        samples = [s for f in families if f.name == "mcpctl_gateway_requests" for s in f.samples]
        return any(s.labels.get("method") == "tools/call" and s.labels.get("outcome") == "ok" for s in samples)

    wait_for(finished, timeout=20)
