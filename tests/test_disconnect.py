"""A client that leaves is gone: the end of `mcpctl connect`'s stdin, or its client's death, is a
disconnect. The bridge exits at once, and the shim cancels what the client had in flight upstream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil

from tests.conftest import Env, wait_for
from tests.test_client_state import resourceful
from tests.test_multiplexer import Raw

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}}
SLEEP = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sleep", "arguments": {"seconds": 30}}}
CONNECT = [sys.executable, "-m", "mcpctl", "connect", "res"]


def _seen(env: Env) -> list[list[Any]]:
    client = Raw(env, "res")
    try:
        client.call("seen", "seen", {})
        return json.loads(client.answer("seen")["result"]["content"][0]["text"])  # type: ignore[no-any-return]
    finally:
        client.close()


def _started(env: Env) -> None:
    env.write_config({"res": resourceful()})
    assert env.run("start", "res").returncode == 0


def test_stdin_eof_with_a_request_in_flight_ends_the_bridge_and_cancels_it_upstream(env: Env) -> None:
    _started(env)
    bridge = subprocess.Popen(CONNECT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=env.workdir)
    assert bridge.stdin is not None
    assert bridge.stdout is not None
    bridge.stdin.write((json.dumps(INIT) + "\n" + json.dumps(SLEEP) + "\n").encode())
    bridge.stdin.flush()
    assert json.loads(bridge.stdout.readline())["id"] == 1
    time.sleep(0.5)  # the sleep is upstream by now (and would run its 30 s)
    closed = time.monotonic()
    bridge.stdin.close()
    assert bridge.wait(timeout=10) == 0
    assert time.monotonic() - closed < 2.0
    assert bridge.stdout.read() == b""  # no answer: the request was cancelled, not waited for
    bridge.stdout.close()
    cancelled = wait_for(lambda: [entry for entry in _seen(env) if entry[0] == "cancelled"], timeout=10)
    assert len(cancelled) == 1
    assert isinstance(cancelled[0][1], int)  # under the shim's upstream id, not the client's "2"


def test_a_bridge_whose_client_died_exits_though_its_stdin_stays_open(env: Env) -> None:
    _started(env)
    read_end, write_end = os.pipe()  # held open here: the bridge never sees the end of its stdin
    spawner = (
        "import subprocess, sys; p = subprocess.Popen(sys.argv[1:]); print(p.pid, flush=True); "
        "import time; time.sleep(600)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", spawner, *CONNECT], stdin=read_end, stdout=subprocess.PIPE, cwd=env.workdir
    )
    os.close(read_end)
    try:
        assert parent.stdout is not None
        bridge = psutil.Process(int(parent.stdout.readline()))
        wait_for(lambda: bridge.net_connections("unix"), timeout=30)  # it reached the shim
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: not bridge.is_running() or bridge.status() == psutil.STATUS_ZOMBIE, timeout=5)
    finally:
        os.close(write_end)
        if parent.stdout is not None:
            parent.stdout.close()
