"""The Python API (`mcpctl.Manager`) against real shims and real servers, side by side with the real CLI."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from mcpctl import (
    BusyError,
    ConnectionLostError,
    Manager,
    MCPCtlError,
    NotRunningError,
    StartError,
    StateDirError,
    ToolError,
)
from tests.conftest import TINY, Env, fixture_server, third_party_server, wait_for
from tests.test_multiplexer import Raw

REPO = Path(__file__).resolve().parent.parent
BUDGET = 120.0  # seconds for a start on a loaded machine (the SDK fixture imports the SDK: ~1 s unloaded)


def manager(env: Env) -> Manager:
    return Manager(directory=env.workdir)


def server_processes(env: Env, marker: str) -> list[psutil.Process]:
    """The test's live processes whose command line names `marker`, the shims left out."""
    found = []
    for proc in env.our_processes():
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if marker in cmdline and "mcpctl.shim" not in cmdline:
            found.append(proc)
    return found


def text(result: Any) -> str:
    return "".join(getattr(item, "text", "") for item in result.content)


def test_import_mcpctl_does_not_import_the_sdk() -> None:
    code = (
        "import sys, mcpctl\n"
        "assert 'mcp' not in sys.modules\n"
        "from mcpctl import Manager, MCPCtlError, ToolError\n"
        "Manager(home='/tmp/nowhere')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'mcp_types', 'anyio', 'pydantic'))\n"
        "assert not heavy, heavy\n"
        "assert issubclass(ToolError, MCPCtlError)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_ensure_running_from_two_threads_and_the_cli_gives_one_server(env: Env) -> None:
    env.write_config({"tiny": {"command": sys.executable, "args": [str(TINY)], "startup_timeout": BUDGET}})
    api = manager(env)
    barrier = threading.Barrier(3)
    seen: list[Any] = []

    def ensure() -> None:
        barrier.wait()
        seen.append(api.ensure_running("tiny"))

    threads = [threading.Thread(target=ensure) for _ in range(2)]
    for thread in threads:
        thread.start()
    barrier.wait()
    cli = env.run("start", "tiny", timeout=BUDGET)
    for thread in threads:
        thread.join(BUDGET)
    assert cli.returncode == 0, cli.stderr
    assert [obs.state for obs in seen] == ["ready", "ready"]
    assert seen[0].shim_pid == seen[1].shim_pid == env.status("tiny")["shim_pid"]
    assert len(env.running(TINY)) == 1


@pytest.mark.parametrize("kind", ["fixture", "mcp-server-time"])
def test_a_session_lists_and_calls_tools_while_the_cli_calls_the_same_server(env: Env, kind: str) -> None:
    if kind == "fixture":
        table, marker = fixture_server("healthy"), "server.py"
        tool, args, cli_args = "echo", {"text": "hi"}, ["text=hi"]
    else:
        table, marker = third_party_server("mcp-server-time"), "mcp-server-time"
        tool, args, cli_args = "get_current_time", {"timezone": "UTC"}, ["timezone=UTC"]
    env.write_config({"srv": {**table, "startup_timeout": BUDGET}})
    api = manager(env)

    async def scenario() -> tuple[list[str], str, subprocess.CompletedProcess[str]]:
        async with api.session("srv") as session:
            names = [t.name for t in (await session.list_tools()).tools]
            first = await session.call_tool(tool, args)
            cli = await anyio.to_thread.run_sync(lambda: env.run("call", "srv", tool, *cli_args, "--json"))
            again = await session.call_tool(tool, args)  # the session is still served
            assert not first.is_error
            assert not again.is_error
            return names, text(first), cli

    names, answer, cli = anyio.run(scenario)
    assert tool in names
    assert cli.returncode == 0, cli.stderr
    if kind == "fixture":
        assert answer == "hi"
        assert '"hi"' in cli.stdout
    else:
        assert '"timezone": "UTC"' in answer
        assert "UTC" in cli.stdout
    assert len(server_processes(env, marker)) == 1


def test_a_session_survives_restarts_by_the_manager_and_by_the_cli(env: Env) -> None:
    env.write_config({"fx": {**fixture_server("healthy"), "startup_timeout": BUDGET}})
    api = manager(env)

    async def pid(session: Any) -> int:
        return int(text(await session.call_tool("pid", {})))

    async def scenario() -> list[int]:
        async with api.session("fx") as session:
            pids = [await pid(session)]
            await anyio.to_thread.run_sync(lambda: api.restart("fx"))
            pids.append(await pid(session))
            api.restart("fx")  # blocking the event loop, as a careless caller would
            pids.append(await pid(session))
            restarted = await anyio.to_thread.run_sync(lambda: env.run("restart", "fx", timeout=BUDGET))
            assert restarted.returncode == 0, restarted.stderr
            pids.append(await pid(session))
            assert "echo" in [t.name for t in (await session.list_tools()).tools]
            return pids

    pids = anyio.run(scenario)
    assert len(set(pids)) == 4, pids  # four server processes, one after the other, one session
    assert [p.pid for p in env.servers_running("healthy")] == [pids[-1]]


def test_a_session_starts_again_a_server_whose_shim_died_and_never_one_a_person_stopped(env: Env) -> None:
    env.write_config({"fx": {**fixture_server("healthy"), "startup_timeout": BUDGET}})
    api = manager(env)

    async def pid(session: Any) -> int:
        return int(text(await session.call_tool("pid", {})))

    async def run(*args: str) -> None:
        done = await anyio.to_thread.run_sync(lambda: env.run(*args, timeout=BUDGET))
        assert done.returncode == 0, done.stderr

    async def scenario() -> tuple[list[int], list[NotRunningError]]:
        async with api.session("fx") as session:
            pids = [await pid(session)]
            shim = api.status("fx")[0].shim_pid
            assert shim is not None
            psutil.Process(shim).kill()  # no word from it: the session's next request starts the server again
            await anyio.to_thread.run_sync(lambda: psutil.Process(shim).wait(BUDGET))
            pids.append(await pid(session))
            await run("stop", "fx")  # a person's stop: the session must not undo it
            refused = []
            for request in (lambda: session.call_tool("pid", {}), session.send_ping, session.list_tools):
                with pytest.raises(NotRunningError) as caught:  # mcpctl's class, not the SDK's MCPError
                    await request()
                refused.append(caught.value)
            assert env.servers_running("healthy") == []
            await run("start", "fx")
            pids.append(await pid(session))
            return pids, refused

    pids, refused = anyio.run(scenario)
    assert len(set(pids)) == 3, pids
    for error in refused:
        assert (error.type, error.retryable, error.exit_code) == ("not_running", False, 3)
        assert "mcpctl start fx" in error.hint


def test_a_session_dials_past_a_socket_that_drops_it_unanswered(env: Env) -> None:
    """A killed shim's listener outlives it for a moment and takes a connection it never answers: the
    link dials again rather than failing the request (it sends a request only after the replay's answer)."""
    from tests.test_lend import Dropper

    env.write_config({"fx": {**fixture_server("healthy"), "startup_timeout": BUDGET}})
    api = manager(env)

    async def pid(session: Any) -> int:
        return int(text(await session.call_tool("pid", {})))

    async def scenario() -> tuple[int, int, list[bytes]]:
        async with api.session("fx") as session:
            first = await pid(session)
            shim = api.status("fx")[0].shim_pid
            assert shim is not None
            dropper = Dropper(env.paths.socket("fx"))
            try:
                psutil.Process(shim).kill()
                await anyio.to_thread.run_sync(lambda: wait_for(lambda: dropper.dropped, timeout=BUDGET))
                threading.Timer(1.0, dropper.end).start()  # meanwhile the next call meets it too
                second = await pid(session)
            finally:
                dropper.end()
            return first, second, dropper.dropped

    first, second, dropped = anyio.run(scenario)
    assert first != second
    assert len(dropped) >= 2, dropped
    assert not any(b"tools/call" in got for got in dropped), dropped


def test_a_crashing_server_raises_the_error_the_cli_prints(env: Env) -> None:
    env.write_config({"bad": {**fixture_server("crash"), "restart": "never", "startup_timeout": BUDGET}})
    api = manager(env)
    with pytest.raises(StartError) as started:
        api.ensure_running("bad")
    cli = env.json("call", "bad", "echo", "text=hi", expect=4)["error"]
    assert (started.value.type, started.value.retryable) == (cli["type"], cli["retryable"])
    assert (started.value.type, started.value.exit_code) == ("exited_during_startup", 4)
    assert started.value.hint == cli["hint"]
    with pytest.raises(MCPCtlError) as called:
        api.call_tool_sync("bad", "echo", {"text": "hi"})
    assert (called.value.type, called.value.retryable) == (cli["type"], cli["retryable"])

    async def open_session() -> None:
        async with api.session("bad"):
            pass

    with pytest.raises(StartError):
        anyio.run(open_session)


def test_logs_and_events_with_lines_and_since_give_the_last_n_since_then_as_the_cli(env: Env) -> None:
    # since= made lines= ignored: logs("demo", lines=5, since=3600) gave every line of the hour.
    env.write_config({"demo": fixture_server("healthy")})
    api = manager(env)
    api.ensure_running("demo")
    api.call_tool_sync("demo", "shout", {"count": 40, "width": 10})
    last = [line.to_json("demo") for line in api.logs("demo", lines=5, since=3600)]
    cli = env.run("logs", "demo", "--since", "1h", "-n", "5", "--json").stdout.splitlines()
    assert last == [json.loads(line) for line in cli]
    assert len(last) == 5
    assert "shout 000000039 " in last[-1]["line"]
    assert len(api.logs("demo", since=3600)) > 40  # no lines=: all since then
    assert api.logs("demo", lines=0, since=3600) == []
    assert [e["event"] for e in api.events("demo", lines=1, since=3600)] == ["ready"]
    assert len(api.events("demo", since=3600)) > 1


def test_a_session_without_start_of_a_stopped_server_is_not_running(env: Env) -> None:
    env.write_config({"tiny": {"command": sys.executable, "args": [str(TINY)]}})

    async def open_session() -> None:
        async with manager(env).session("tiny", start=False):
            pass

    with pytest.raises(NotRunningError) as info:
        anyio.run(open_session)
    assert (info.value.type, info.value.exit_code, info.value.retryable) == ("not_running", 3, False)
    assert env.our_processes() == []


def test_a_session_past_max_clients_raises_the_shims_refusal_at_once(env: Env) -> None:
    env.write_config({"tiny": {"command": sys.executable, "args": [str(TINY)], "max_clients": 1}})
    assert env.run("start", "tiny").returncode == 0
    holder = Raw(env, "tiny")
    holder.send({"id": "held", "method": "ping"})
    assert holder.answer("held")["result"] == {}

    async def open_session() -> None:
        async with manager(env).session("tiny"):
            pass

    try:
        for attempt in (open_session, lambda: manager(env).call_tool("tiny", "echo")):
            with pytest.raises(BusyError) as info:
                anyio.run(attempt)
            assert (info.value.type, info.value.exit_code) == ("too_many_clients", 9)
            assert "max_clients" in info.value.message
            assert "max_clients" in info.value.hint
    finally:
        holder.close()


def test_call_tool_retries_a_lost_connection_and_not_a_tool_error(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A call lost in flight (the server died in it) is sent again only when its tool is marked read-only
    (`peek`) or idempotent: `crash`, unmarked, may have done its work, so it is said and not repeated."""
    ok_file = tmp_path / "crashed-once"
    table = fixture_server("healthy", env={"OK_FILE": str(ok_file)}, backoff_base=0.1, startup_timeout=BUDGET)
    env.write_config({"fx": table})
    api = manager(env)
    api.ensure_running("fx")
    with pytest.raises(ConnectionLostError) as lost:  # the server dies in the call: the shim says so
        api.call_tool_sync("fx", "crash", retries=0, timeout=BUDGET)
    assert (lost.value.type, lost.value.retryable) == ("connection_lost", True)

    ok_file.unlink()
    caplog.set_level(logging.WARNING, logger="mcpctl")
    with pytest.raises(ConnectionLostError) as unrepeated:
        api.call_tool_sync("fx", "crash", retries=3, timeout=BUDGET)
    assert "with the call of crash in flight" in unrepeated.value.message
    assert "not retried: crash may have run" in unrepeated.value.hint
    said = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].endswith("if crash is marked read-only or idempotent")
    assert ok_file.exists()  # crash ran (and made the file): sent twice, it would have "survived"
    ok_file.unlink()

    caplog.clear()
    result = api.call_tool_sync("fx", "peek", retries=3, timeout=BUDGET)
    assert text(result) == "survived"
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 1, retries
    assert "lost the connection" in retries[0]

    caplog.clear()
    with pytest.raises(ToolError) as failed:
        api.call_tool_sync("fx", "fail", {"reason": "on purpose"}, retries=3, timeout=BUDGET)
    assert (failed.value.type, failed.value.retryable, failed.value.exit_code) == ("tool_error", False, 10)
    assert failed.value.message.startswith("fx fail: ")  # the tool's own text follows
    assert failed.value.result is not None
    assert failed.value.result.is_error
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


def test_a_servers_own_error_of_mcpctls_code_is_the_servers_never_a_lost_connection(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """`refuse` answers JSON-RPC error -32000 with no data: the code of mcpctl's own errors, without the
    type they carry. It read as ConnectionLostError (call_tool even retried it, 'in flight'); it is the
    server's: the SDK's MCPError on a session, a ToolError from call_tool (as `mcpctl call` says: exit 10),
    and the session goes on. Only once the session has ended is the SDK's closing a lost connection."""
    from mcp.shared.exceptions import MCPError

    env.write_config({"t": {"command": sys.executable, "args": [str(TINY), "--exit-on-discover"]}})
    api = manager(env)
    api.ensure_running("t")

    async def scenario() -> tuple[MCPError, str, BaseException]:
        async with api.session("t") as session:
            with pytest.raises(MCPError) as refused:
                await session.call_tool("refuse", {})
            after = text(await session.call_tool("echo", {"text": "still here"}))
        with pytest.raises(MCPCtlError) as ended:
            await session.send_ping()
        return refused.value, after, ended.value

    refused, after, ended = anyio.run(scenario)
    assert not isinstance(refused, MCPCtlError)
    assert (refused.code, refused.message, refused.data) == (-32000, "refused on purpose", None)
    assert after == "still here"
    assert isinstance(ended, ConnectionLostError)
    caplog.set_level(logging.WARNING, logger="mcpctl")
    with pytest.raises(ToolError) as failed:
        api.call_tool_sync("t", "refuse", retries=3, timeout=BUDGET)
    assert failed.value.message == "t answered tools/call with error -32000: refused on purpose"
    assert (failed.value.type, failed.value.retryable, failed.value.exit_code) == ("tool_error", False, 10)
    assert not [r for r in caplog.records if "retry" in r.getMessage()]
    cli = env.run("call", "t", "refuse")
    assert cli.returncode == 10
    assert "error -32000: refused on purpose" in cli.stderr


def test_the_example_agent_type_checks_strictly() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "examples/agent.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_example_agent_calls_two_third_party_servers(env: Env, tmp_path: Path) -> None:
    memory = tmp_path / "memory.jsonl"
    config = env.write_config(
        {
            "time": {**third_party_server("mcp-server-time"), "startup_timeout": BUDGET},
            "memory": {**third_party_server("server-memory"), "env": {"MEMORY_FILE_PATH": str(memory)}},
        }
    )
    for run in range(2):  # the second run finds both servers running and adds to what the first wrote
        if run:  # the memory server keeps an observation once: "ran at" the same second would be one
            time.sleep(1 - time.time() % 1)
        proc = subprocess.run(
            [sys.executable, str(REPO / "examples" / "agent.py"), str(config)],
            capture_output=True,
            text=True,
            check=False,
            timeout=BUDGET,
        )
        assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("ran at") == 2, proc.stdout
    assert len(server_processes(env, "mcp-server-time")) == 1
    assert len(server_processes(env, "server-memory")) == 1


def test_the_readme_shows_the_example_agent() -> None:
    readme = (REPO / "README.md").read_text()
    assert (REPO / "examples" / "agent.py").read_text().strip() in readme


def test_stop_and_status_of_a_config_that_became_refused_go_by_the_records(env: Env) -> None:
    config = env.write_config({"tiny": {"command": sys.executable, "args": [str(TINY)]}})
    assert env.run("start", "tiny").returncode == 0
    config.chmod(0o664)  # group-writable now: refused, and not read
    manager = Manager(directory=env.workdir, home=env.home)
    with pytest.raises(MCPCtlError, match="its group can write to it"):
        manager.start("tiny")
    assert [o.name for o in manager.status()] == ["tiny"]
    assert [r.name for r in manager.stop("tiny")] == ["tiny"]
    assert env.status("tiny")["state"] == "stopped"


def test_a_config_someone_else_could_have_written_is_refused_as_the_cli_refuses_it(env: Env) -> None:
    shared = env.workdir / "shared"
    shared.mkdir()
    shared.chmod(0o775)  # group-writable: another user could have planted the file
    planted = shared / "mcpctl.toml"
    planted.write_text(f'[servers.tiny]\ncommand = "{sys.executable}"\nargs = ["{TINY}"]\n')
    cli = env.run("-f", str(planted), "status")  # named explicitly: the caller's choice, as config= is
    assert cli.returncode == 0, cli.stderr
    with pytest.raises(MCPCtlError) as found:
        Manager(directory=shared, home=env.home).status()  # found by the search: judged
    assert (found.value.type, found.value.exit_code) == ("config_invalid", 2)
    assert f"others can change {shared}" in found.value.message
    searched = subprocess.run([sys.executable, "-m", "mcpctl", "status"], cwd=shared, capture_output=True,
                              text=True, check=False)  # fmt: skip
    assert searched.returncode == 2
    assert f"others can change {shared}" in searched.stderr
    assert [o.name for o in Manager(config=planted, home=env.home).status()] == ["tiny"]
    assert env.our_processes() == []


def test_the_api_refuses_a_shared_state_dir_before_it_reads_it(env: Env) -> None:
    """As the CLI's commands that only read: a shared state dir's records and logs are never used."""
    env.write_config({"demo": fixture_server("normal")})
    shared = env.home.parent / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    m = Manager(directory=env.workdir, home=shared)
    for read in (m.status, m.check, lambda: m.logs("demo")):
        with pytest.raises(StateDirError, match=rf"refusing {shared}: it is shared \(mode 0o777\)") as refused:
            read()
        assert refused.value.exit_code == 1


def test_stop_and_status_go_by_the_records_when_the_config_is_broken_as_the_cli_does(env: Env) -> None:
    env.write_config({"tiny": {"command": sys.executable, "args": [str(TINY)]}})
    assert env.run("start", "tiny").returncode == 0
    with env.config.open("a") as config:
        config.write("garbage = [\n")  # broken while its server runs
    m = Manager(directory=env.workdir, home=env.home)
    assert [(o.name, o.state) for o in m.status()] == [("tiny", "ready")]
    with pytest.raises(MCPCtlError) as refused:
        m.start("tiny")
    assert refused.value.exit_code == 2
    assert [r.outcome for r in m.stop()] == ["stopped"]
    assert env.our_processes() == []
