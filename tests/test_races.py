"""start against a concurrent stop: the answer is "stopped before it became ready", never a lost shim; and
restart against a concurrent restart or stop, while the shim waits on a slow old tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mcpctl.events import read_events
from tests.conftest import Env, alive, fixture_server, tiny_server, wait_for

LOST = ("exited without reporting", "shim_lost", "internal error")


def test_a_stop_signal_at_the_moment_the_shim_locks_is_a_stop(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"t": tiny_server()})
    monkeypatch.setenv("MCPCTL_TEST_SIGNAL_AT_LOCK", "SIGTERM")  # the shim signals itself as it takes the lock
    result = env.run("start", "t")
    assert result.returncode == 4, result.stderr
    assert "stopped before it became ready" in result.stderr
    assert not any(lost in result.stderr for lost in LOST), result.stderr
    assert env.status("t")["state"] == "stopped"
    assert env.status("t")["last_error"] is None or "shim_lost" not in str(env.status("t")["last_error"])
    assert env.our_processes() == []


@pytest.mark.stress
@pytest.mark.timeout(600)
def test_sixty_start_stop_pairs_never_lose_a_shim(env: Env) -> None:
    env.write_config({"t": tiny_server(stop_timeout=5)})

    def mcpctl(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mcpctl", *args]
        return subprocess.run(command, cwd=env.workdir, capture_output=True, text=True, timeout=120, check=False)

    problems = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for n in range(60):
            start, stop = pool.submit(mcpctl, "start", "t"), pool.submit(mcpctl, "stop", "t")
            for name, result in (("start", start.result()), ("stop", stop.result())):
                text = result.stdout + result.stderr
                if result.returncode not in (0, 4) or any(lost in text for lost in LOST) or "Traceback" in text:
                    problems.append(f"pair {n}: {name} exit {result.returncode}: {result.stderr.strip()}")
                elif result.returncode == 4 and "stopped before it became ready" not in result.stderr:
                    problems.append(f"pair {n}: {name}: {result.stderr.strip()}")
            mcpctl("stop", "t")
    assert problems == []
    assert "shim_lost" not in env.state_file("t").read_text()


# Generous: the SDK fixture takes a second or more to start on a loaded 2-core machine. Not a timed test.
BUDGET = 120.0


def slow_to_end(env: Env) -> tuple[dict[str, object], Path]:
    """A ready server whose tree outlasts any wait on it: its grandchild ignores SIGTERM, and stop_timeout
    is longer than the test. The test kills the grandchild once what it tests has happened: the shim is
    then in the middle of ending the old tree, however loaded the machine is."""
    pidfile = env.workdir / "grandchild.pid"
    settings = {"stop_timeout": BUDGET, "startup_timeout": BUDGET}
    env.write_config({"demo": fixture_server("grandchild", env={"GRANDCHILD_PIDFILE": str(pidfile)}, **settings)})
    started = env.run("start", "demo", timeout=BUDGET)
    assert started.returncode == 0, started.stderr
    wait_for(pidfile.read_text)
    return env.status("demo"), pidfile


@contextlib.contextmanager
def commands(env: Env) -> Iterator[list[subprocess.Popen[str]]]:
    """CLI runs started in the background (append to the list); any still running at the end are killed."""
    running: list[subprocess.Popen[str]] = []
    try:
        yield running
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def background(env: Env, running: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "mcpctl", *args]
    proc = subprocess.Popen(argv, cwd=env.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    running.append(proc)
    return proc


def ended_old_server(server: dict[str, object], pidfile: Path) -> int:
    """Once the old server is gone (the shim now waits on its grandchild): the grandchild's pid."""
    wait_for(lambda: not alive(int(server["pid"])), timeout=BUDGET)  # type: ignore[call-overload]
    grandchild = int(pidfile.read_text())
    assert alive(grandchild)
    return grandchild


@pytest.mark.timeout(600)
def test_a_restart_during_a_restart_in_place_joins_it(env: Env) -> None:
    """The second restart comes while the shim ends the old tree (which takes long): it joins that restart.
    It used to be refused ("try again in a moment"), and so stopped the shim and started a new one: the
    first restart then failed with "another command stopped it" and the clients got `not_running`."""
    server, pidfile = slow_to_end(env)
    with commands(env) as running:
        first = background(env, running, "restart", "demo")
        grandchild = ended_old_server(server, pidfile)
        second = background(env, running, "restart", "demo")
        log = env.paths.log_file("demo")
        wait_for(lambda: "joins the one under way" in log.read_text(), timeout=BUDGET)
        os.kill(grandchild, signal.SIGKILL)  # the old tree ends now
        outcomes = [proc.communicate(timeout=BUDGET) for proc in (first, second)]
    for proc, (_, err) in zip((first, second), outcomes, strict=True):
        assert proc.returncode == 0, err
    status = env.status("demo")
    assert (status["state"], status["shim_pid"]) == ("ready", server["shim_pid"])
    kinds = [event["event"] for event in read_events(env.paths.events_file("demo"))]
    after = kinds[len(kinds) - kinds[::-1].index("restart") - 1 :]
    assert kinds.count("restart") == 1
    assert after == ["restart", "started", "ready"]
    assert len(env.servers_running("grandchild")) == 1


@pytest.mark.timeout(600)
def test_a_stop_during_a_restart_in_place_wins(env: Env) -> None:
    """A stop asked while the shim ends the old tree for a restart: nothing is spawned after it, the stop
    waits only for the old tree, and the restart says it was stopped (exit 4). The shim used to start the
    new server anyway, and the stop then waited for that one to end too."""
    server, pidfile = slow_to_end(env)
    with commands(env) as running:
        restart = background(env, running, "restart", "demo")
        grandchild = ended_old_server(server, pidfile)
        stop = background(env, running, "stop", "demo")
        wait_for(lambda: env.record("demo").get("state") == "stopping", timeout=BUDGET)
        os.kill(grandchild, signal.SIGKILL)
        _, stop_err = stop.communicate(timeout=BUDGET)
        _, restart_err = restart.communicate(timeout=BUDGET)
    assert stop.returncode == 0, stop_err
    assert env.our_processes() == []  # stop returns once nothing is left
    assert restart.returncode == 4, restart_err
    assert "demo was stopped before it became ready (another command stopped it)" in restart_err
    kinds = [event["event"] for event in read_events(env.paths.events_file("demo"))]
    assert kinds[-1] == "stopped"
    assert "started" not in kinds[kinds.index("ready") :]  # nothing spawned after the first ready
    status = env.status("demo")
    assert (status["state"], status["shim_pid"]) == ("stopped", None)
