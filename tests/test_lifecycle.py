"""start / stop / restart / status against real fixture servers speaking real MCP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from mcpctl.state import lock_holder
from tests.conftest import TINY, Env, alive, fixture_server, tiny_server, wait_for

STATUS_FIELDS = {
    "name",
    "state",
    "pid",
    "shim_pid",
    "started_at",
    "ready_at",
    "uptime_s",
    "restarts",
    "consecutive_failures",
    "total_failures",
    "last_exit_code",
    "last_error",
    "transport",
    "config_hash",
}


def test_start_status_stop_round_trip(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", stop_timeout=5)})
    started = env.run("start", "demo")
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("demo: ready in ")

    report = env.json("status")
    assert report["schema"] == 1
    server = report["servers"][0]
    assert set(server) >= STATUS_FIELDS
    assert server["state"] == "ready"
    assert server["transport"] == "stdio"
    assert server["last_error"] is None
    assert server["ready_at"] >= server["started_at"]
    proc = psutil.Process(server["pid"])
    assert "healthy" in proc.cmdline()
    assert psutil.Process(server["shim_pid"]).cmdline()[1:] == ["-m", "mcpctl.shim", "demo"]

    table = env.run("status")
    assert table.returncode == 0
    assert "demo" in table.stdout
    assert "ready" in table.stdout

    stopped = env.run("stop", "demo")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith("demo: stopped in ")
    assert not alive(server["pid"])
    assert not alive(server["shim_pid"])
    assert env.our_processes() == []

    after = env.status("demo")
    assert (after["state"], after["pid"], after["shim_pid"]) == ("stopped", None, None)
    assert env.run("status", "demo").returncode == 3


def test_start_is_idempotent(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    first = env.status("demo")["pid"]
    again = env.run("start", "demo")
    assert again.returncode == 0
    assert "already ready" in again.stdout
    assert env.status("demo")["pid"] == first
    assert len(env.running(TINY)) == 1


def test_stop_of_a_stopped_server_is_a_no_op(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    proc = env.run("stop", "demo")
    assert proc.returncode == 0
    assert "demo: not running" in proc.stdout
    assert env.json("stop", "demo")["results"][0]["outcome"] == "not_running"


def test_twenty_simultaneous_starts_leave_one_server(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    command = [sys.executable, "-m", "mcpctl", "start", "demo", "--json"]

    def start(_: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=env.workdir, capture_output=True, text=True, timeout=60, check=False)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(start, range(20)))
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results if r.returncode]
    outcomes = sorted(json.loads(r.stdout)["results"][0]["outcome"] for r in results)
    assert outcomes.count("started") == 1
    assert outcomes.count("already_running") == 19
    assert len(env.running(TINY)) == 1
    pids = {json.loads(r.stdout)["results"][0]["server"]["pid"] for r in results}
    assert len(pids) == 1


def test_restart_gives_a_new_server_process(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    old = env.status("demo")
    restarted = env.run("restart", "demo")
    assert restarted.returncode == 0, restarted.stderr
    new = env.status("demo")
    assert new["state"] == "ready"
    assert new["pid"] != old["pid"]
    assert not alive(old["pid"])
    assert len(env.running(TINY)) == 1


def test_restart_of_a_stopped_server_starts_it(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("restart", "demo").returncode == 0
    assert env.status("demo")["state"] == "ready"


def test_start_all_and_stop_all(env: Env) -> None:
    env.write_config({name: tiny_server() for name in ("one", "two", "three")})
    started = env.json("start", "--all")
    assert [r["outcome"] for r in started["results"]] == ["started"] * 3
    assert {s["state"] for s in env.json("status")["servers"]} == {"ready"}
    assert len(env.running(TINY)) == 3
    stopped = env.json("stop", "--all")
    assert [r["outcome"] for r in stopped["results"]] == ["stopped"] * 3
    assert env.our_processes() == []


def test_start_all_of_a_config_with_no_servers_says_there_is_nothing_to_start(env: Env) -> None:
    """It printed nothing and exited 0, as if it had started them all."""
    env.config.write_text('project = "p"\n[servers.off]\ncommand = "true"\nenabled = false\n')
    for command, word in (("start", "start"), ("restart", "restart")):
        proc = env.run(command, "--all")
        assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
        assert proc.stderr == f"note: nothing to {word}: {env.config} has no enabled servers\n"
    assert env.run("-q", "start", "--all").stderr == ""
    assert env.json("start", "--all") == {"schema": 1, "results": []}


def test_start_all_hatches_every_shim_from_one_interpreter(env: Env) -> None:
    names = ["one", "two", "three"]
    env.write_config({name: tiny_server() for name in names})
    without_home = {k: v for k, v in os.environ.items() if k != "MCPCTL_HOME"}  # --home names it
    caller = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "--home", str(env.home), "start", "--all"], cwd=env.workdir, env=without_home
    )
    assert caller.wait(timeout=60) == 0
    servers = {s["name"]: s for s in env.json("status")["servers"]}
    shims = {name: psutil.Process(servers[name]["shim_pid"]) for name in names}
    assert len({shim.pid for shim in shims.values()}) == 3
    for name, shim in shims.items():
        assert shim.cmdline()[1:] == ["-m", "mcpctl.shim", *names]  # one brood's command line
        assert shim.name() == f"mcpctl:{name}"  # but each names its own server
        assert os.getsid(shim.pid) == shim.pid  # a session of its own, apart from the caller's
        assert shim.environ()["MCPCTL_HOME"] == str(env.home)  # as every process of ours (doctor looks)
        assert shim.ppid() != caller.pid
        assert lock_holder(env.paths.instance_lock(name)) == shim.pid
        assert {p.pid for p in shim.children()} == {servers[name]["pid"]}
    # The brood itself is gone: the only processes with that command line are the three shims.
    brood = [p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == shims["one"].cmdline()]
    assert sorted(brood) == sorted(shim.pid for shim in shims.values())
    assert env.run("stop", "two").returncode == 0
    assert [env.status(name)["state"] for name in names] == ["ready", "stopped", "ready"]
    assert alive(servers["one"]["pid"])
    assert alive(servers["three"]["pid"])


def test_no_wait_returns_before_ready(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    result = env.json("start", "demo", "--no-wait")["results"][0]
    assert result["outcome"] in ("spawned", "started")
    assert result["server"]["shim_pid"]
    wait_for(lambda: env.status("demo")["state"] == "ready", timeout=20)


def test_stop_removed_server_still_known_to_state_dir(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    pid = env.status("demo")["pid"]
    env.write_config({"other": tiny_server()})
    assert "demo" in [s["name"] for s in env.json("status")["servers"]]
    assert env.run("stop", "demo").returncode == 0
    assert not alive(pid)


def test_state_dir_is_private_and_socket_is_0600(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    assert stat.S_IMODE(env.home.stat().st_mode) == 0o700
    assert stat.S_IMODE((env.paths.servers / "demo").stat().st_mode) == 0o700
    sock = env.paths.socket("demo")
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfds are Linux 5.3+: elsewhere stop uses the socket")
def test_stop_signals_the_lock_holder_and_never_calls_its_control_socket(env: Env) -> None:
    """`stop` asks a shim with SIGTERM through a pidfd once that pid is checked to hold the instance lock (fifty
    control calls took the CLI 120-160 ms, starved by the shims it had asked): here the control socket is a
    dead end, and nobody so much as connects to it."""
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    shim = env.status("demo")["shim_pid"]
    control = env.paths.control_socket("demo")
    control.unlink()
    with socket.socket(socket.AF_UNIX) as dead_end:
        dead_end.bind(str(control))
        dead_end.listen(8)
        dead_end.setblocking(False)
        stopped = env.run("stop", "demo")
        assert stopped.returncode == 0, stopped.stderr
        with pytest.raises(BlockingIOError):
            dead_end.accept()
    assert env.status("demo")["state"] == "stopped"
    assert not alive(shim)


def test_a_holder_is_signalled_only_while_it_holds(tmp_path: Path) -> None:
    """process.signal_holder: the pidfd is opened before the holder is checked, so a pid that holds nothing
    (or that another process holds for) is never signalled."""
    from mcpctl.process import signal_holder

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert signal_holder(child.pid, lambda: None, signal.SIGTERM) is False  # holds nothing: gone, as far as asked
        assert signal_holder(child.pid, lambda: child.pid + 1, signal.SIGTERM) is None  # another holds: not ours
        assert child.poll() is None
        assert signal_holder(child.pid, lambda: child.pid, signal.SIGTERM) is True
        assert child.wait(60) == -signal.SIGTERM
        assert signal_holder(child.pid, lambda: None, signal.SIGTERM) is False  # reaped: gone
    finally:
        child.kill()
        child.wait()


def test_many_holders_are_checked_first_and_signalled_only_while_they_hold() -> None:
    """process.signal_holders: each of many is signalled as signal_holder would, every holder checked."""
    from mcpctl.process import signal_holders

    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]) for _ in range(3)]
    held, other, free = children
    checked: list[int] = []

    def holds(pid: int | None, child: subprocess.Popen[bytes]) -> int | None:
        checked.append(child.pid)
        return pid

    try:
        targets = [
            (held.pid, lambda: holds(held.pid, held)),
            (other.pid, lambda: holds(other.pid + 1, other)),
            (free.pid, lambda: holds(None, free)),
        ]
        assert signal_holders(targets, signal.SIGTERM) == [True, None, False]
        assert checked == [held.pid, other.pid, free.pid]
        assert held.wait(60) == -signal.SIGTERM
        assert other.poll() is None
        assert free.poll() is None
    finally:
        for child in children:
            child.kill()
            child.wait()


def _ask(path: Path, line: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(path))
        conn.sendall(line)
        answer: dict[str, Any] = json.loads(conn.makefile().readline())
        return answer


def test_shim_answers_status_on_its_control_socket_and_only_there(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    assert env.run("start", "demo").returncode == 0
    control = env.paths.control_socket("demo")
    assert stat.S_IMODE(control.stat().st_mode) == 0o600
    answer = _ask(control, b'{"jsonrpc":"2.0","id":7,"method":"mcpctl/status"}\n')
    assert answer["id"] == 7
    assert answer["result"]["state"] == "ready"
    assert answer["result"]["server_info"]["name"] == "fixture"
    refused = _ask(control, b'{"jsonrpc":"2.0","id":8,"method":"tools/list"}\n')  # MCP is not served here
    assert refused["error"]["code"] == -32601
    stop = _ask(env.paths.socket("demo"), b'{"jsonrpc":"2.0","id":9,"method":"mcpctl/stop"}\n')
    assert stop["error"]["code"] == -32601  # nor control on the MCP socket
    assert env.status("demo")["state"] == "ready"
    with socket.socket(socket.AF_UNIX) as conn:  # one request a connection: the shim closes once it answered
        conn.settimeout(30)
        conn.connect(str(control))
        conn.sendall(
            b'{"jsonrpc":"2.0","id":1,"method":"mcpctl/status"}\n{"jsonrpc":"2.0","id":2,"method":"mcpctl/status"}\n'
        )
        said = b""
        while chunk := conn.recv(65536):  # until the shim's close, never the timeout
            said += chunk
    assert [json.loads(line)["id"] for line in said.splitlines()] == [1]
    with socket.socket(socket.AF_UNIX) as conn:  # a request in pieces waits for its end
        conn.connect(str(control))
        conn.sendall(b'{"jsonrpc":"2.0","id":3,')
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(65536)
        conn.settimeout(30)
        conn.sendall(b'"method":"mcpctl/status"}\n')
        assert json.loads(conn.makefile("rb").readline())["id"] == 3


def test_shim_is_detached_from_the_cli(env: Env) -> None:
    """The shim lives in a session of its own: ending the caller's whole session leaves it running."""
    env.write_config({"demo": tiny_server()})
    caller = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "start", "demo"],
        cwd=env.workdir,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert caller.wait(timeout=60) == 0
    with contextlib.suppress(ProcessLookupError):
        os.killpg(caller.pid, signal.SIGKILL)  # what closing a terminal or ending a CI step does
    server = env.status("demo")
    shim = psutil.Process(server["shim_pid"])
    assert os.getsid(shim.pid) not in (caller.pid, os.getsid(0))
    assert shim.ppid() != caller.pid
    assert os.getpgid(server["pid"]) == server["pid"]  # the server has a process group of its own
    assert alive(server["pid"])
    assert env.status("demo")["state"] == "ready"


def test_http_server_is_ready_after_http_initialize(env: Env) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mcp"
    env.write_config({"web": fixture_server("http", url=url, env={"FIXTURE_PORT": str(port)}, stop_timeout=3)})
    started = env.run("start", "web")
    assert started.returncode == 0, started.stderr
    server = env.status("web")
    assert (server["state"], server["transport"]) == ("ready", "http")
    assert env.run("stop", "web").returncode == 0
    assert not alive(server["pid"])


def test_status_does_not_import_the_mcp_sdk(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    # The typer app's status (the hot path's is tested in test_hot); -X importtime lists every import as it
    # happens (a command ends without the interpreter's teardown, so nothing runs after it).
    probe = "import sys; sys.argv = ['mcpctl', 'status', '--json']; from mcpctl.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe], cwd=env.workdir, capture_output=True, text=True, check=True
    )
    assert json.loads(proc.stdout)["servers"][0]["name"] == "demo"
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert "mcpctl" in imported
    assert not {"mcp", "anyio", "pydantic"} & imported


def test_the_shim_does_not_import_the_mcp_sdk() -> None:
    probe = "import sys, mcpctl.shim; print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_a_server_still_starting_can_be_stopped(env: Env) -> None:
    env.write_config({"slow": fixture_server("hang", startup_timeout=120, stop_timeout=1)})
    assert env.json("start", "slow", "--no-wait")["results"][0]["outcome"] == "spawned"
    assert env.status("slow")["state"] == "starting"
    assert env.run("status", "slow").returncode == 0  # starting counts as running
    stopped = env.json("stop", "slow")["results"][0]
    assert stopped["outcome"] == "stopped"
    assert env.status("slow")["state"] == "stopped"
    assert env.our_processes() == []
