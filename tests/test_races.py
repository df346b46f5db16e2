"""start against a concurrent stop: the answer is "stopped before it became ready", never a lost shim."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Env, tiny_server

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
