"""Isolation for every test (own state dir, no colour, fixed width) and helpers to drive the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import tomli_w
from hypothesis import HealthCheck, settings

from mcpctl.paths import Paths

FIXTURE = Path(__file__).parent / "fixtures" / "server.py"
TINY = Path(__file__).parent / "fixtures" / "tiny.py"


# The tests end followers (`logs -f`, `events -f`) with SIGINT, as a person's Ctrl-C does. A CI step run in
# the background of a non-interactive shell inherits SIGINT ignored, and so would every process a test
# starts (an ignored signal stays ignored across exec): Python then never raises KeyboardInterrupt. A
# handler here (a handler, unlike SIG_IGN, is reset to the default by exec) gives them the default back.
signal.signal(signal.SIGINT, signal.default_int_handler)

# Property tests are not timed tests: a generated example that takes long on a loaded 2-core CI machine is
# no failure (Hypothesis' default 200 ms deadline and its "too slow" check failed them there).
settings.register_profile("mcpctl", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mcpctl")

# Third-party MCP servers, installed by `.ci/test-servers` (run by .ci/run) into this cache, never at test time:
# name -> (interpreter or None, entry point inside the cache).
_NPM = "npm/node_modules/@modelcontextprotocol"
THIRD_PARTY = {
    "server-everything": ("node", f"{_NPM}/server-everything/dist/index.js"),
    "server-filesystem": ("node", f"{_NPM}/server-filesystem/dist/index.js"),
    "server-memory": ("node", f"{_NPM}/server-memory/dist/index.js"),
    "mcp-server-time": (None, "mcp-server-time/bin/mcp-server-time"),
}


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `predicate` is truthy; fail the test with a clear message when it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {getattr(predicate, '__name__', predicate)}")
        time.sleep(interval)


@contextlib.contextmanager
def following(env: Env, name: str) -> Iterator[Path]:
    """`mcpctl logs NAME -f -n 0` into a file (not a pipe: megabytes would fill one nobody reads yet)
    while the block runs; yields that file, and checks the follower ended cleanly on SIGINT."""
    output = env.workdir / "followed.txt"
    with open(output, "w") as sink:
        command = [sys.executable, "-m", "mcpctl", "logs", name, "-f", "-n", "0"]
        follower = subprocess.Popen(command, cwd=env.workdir, stdout=sink, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the follower is polling before the lines come (it prints nothing to wait for)
        yield output
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=10)
    assert follower.returncode == 0, err


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def fixture_server(mode: str, **settings: Any) -> dict[str, Any]:
    """A [servers.NAME] table running tests/fixtures/server.py MODE with this interpreter."""
    return {"command": sys.executable, "args": [str(FIXTURE), mode], **settings}


def tiny_server(**settings: Any) -> dict[str, Any]:
    """A [servers.NAME] table running tests/fixtures/tiny.py: a real MCP server (initialize, ping, tools/list, no
    tools) that starts in ~20 ms, for tests that need *a* server and none of the SDK fixture's tools."""
    return {"command": sys.executable, "args": [str(TINY)], **settings}


def settle(env: Env, name: str, predicate: Callable[[dict[str, Any]], Any], timeout: float = 20.0) -> dict[str, Any]:
    """NAME's status once `predicate` holds for it: polled on the state file the shim writes (reading a file, where
    each `mcpctl status` is a whole CLI run competing with the processes under test), then confirmed by the CLI."""

    def confirmed() -> dict[str, Any] | None:
        status = env.status(name)
        return status if predicate(status) else None

    wait_for(lambda: predicate(env.record(name)), timeout=timeout)
    return wait_for(confirmed, timeout=timeout)  # type: ignore[no-any-return]


def third_party_cache() -> Path:
    """Where `.ci/test-servers` installs them: $MCPCTL_TEST_SERVERS, else ~/.cache/mcpctl-test-servers."""
    return Path(os.environ.get("MCPCTL_TEST_SERVERS") or Path.home() / ".cache" / "mcpctl-test-servers").absolute()


def third_party_server(name: str, *args: str, **settings: Any) -> dict[str, Any]:
    """A [servers.NAME] table running an installed third-party server; skips the test when it is not installed."""
    interpreter, entry = THIRD_PARTY[name]
    path = third_party_cache() / entry
    runner = shutil.which(interpreter) if interpreter else None
    if not path.exists() or (interpreter and runner is None):
        pytest.skip(f"{name} not installed in {third_party_cache()} (`bash .ci/test-servers`, run by .ci/run)")
    command = [runner, str(path)] if runner else [str(path)]
    return {"command": command[0], "args": [*command[1:], *args], **settings}


@dataclass
class Env:
    """One test's world: a state dir, a config file, and the CLI run as a real subprocess."""

    home: Path
    workdir: Path

    @property
    def config(self) -> Path:
        return self.workdir / "mcpctl.toml"

    def write_config(self, servers: dict[str, dict[str, Any]]) -> Path:
        self.config.write_text(tomli_w.dumps({"servers": servers}))
        return self.config

    def run(self, *args: str, timeout: float = 60.0, check_traceback: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "mcpctl", *args],
            cwd=self.workdir,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check_traceback:
            assert "Traceback" not in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stdout, proc.stdout
        return proc

    def json(self, *args: str, expect: int = 0) -> Any:
        proc = self.run(*args, "--json")
        assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
        return json.loads(proc.stdout)

    def status(self, name: str) -> dict[str, Any]:
        proc = self.run("status", name, "--json")
        assert proc.returncode in (0, 3), proc.stderr
        return json.loads(proc.stdout)["servers"][0]

    @property
    def paths(self) -> Paths:
        """The state dir's files of this test's project (its config's directory, `w`)."""
        return Paths(self.home, "w")

    def state_file(self, name: str) -> Path:
        return self.paths.state_file(name)

    def record(self, name: str) -> dict[str, Any]:
        """NAME's state file as written (not reconciled, unlike status); {} while there is none."""
        try:
            record: dict[str, Any] = json.loads(self.state_file(name).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return record

    def our_processes(self) -> list[psutil.Process]:
        """Every live process that carries this test's state dir in its environment (shims, servers)."""
        return _carrying(lambda home: home == str(self.home))

    def running(self, script: Path) -> list[psutil.Process]:
        """Live processes of this test that run `script` (a fixture server such as TINY)."""
        return [proc for proc in self.our_processes() if _runs(proc, str(script))]

    def servers_running(self, mode: str = "") -> list[psutil.Process]:
        result = []
        for proc in self.our_processes():
            with contextlib.suppress(psutil.Error):
                cmdline = proc.cmdline()
                if str(FIXTURE) in cmdline and (not mode or mode in cmdline):
                    result.append(proc)
        return result


def _runs(proc: psutil.Process, script: str) -> bool:
    with contextlib.suppress(psutil.Error):
        return script in proc.cmdline()
    return False


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    # A short path: unix socket paths must stay under ~107 bytes, and tmp_path is often longer.
    root = Path(tempfile.mkdtemp(prefix="mc-", dir="/tmp"))
    home, workdir = root / "h", root / "w"
    workdir.mkdir()
    for key in ("MCPCTL_CONFIG", "MCPCTL_DEBUG", "MCPCTL_LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")  # messages in English, whatever the machine's locale (tests/test_i18n.py)
    monkeypatch.setenv("MCPCTL_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "xdg"))
    world = Env(home, workdir)
    yield world
    _end_what_is_left(world)
    shutil.rmtree(root, ignore_errors=True)


def _carrying(home_is: Callable[[str], bool]) -> list[psutil.Process]:
    """Live processes (zombies left out) whose MCPCTL_HOME `home_is` says is the one looked for."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if home_is(proc.environ().get("MCPCTL_HOME", "")) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def _end_what_is_left(world: Env) -> None:
    """Kill every process the test left (each carries its MCPCTL_HOME: the test's, or another state dir under
    the test's folder, which some tests name). Not `stop --all`: that is a CLI run and a graceful stop per test,
    and no test asserts anything of its own cleanup. In rounds, because a shim killed while restarting may have
    spawned one more server."""
    for _ in range(20):
        # zombies excluded: nobody may ever reap a dead shim's children here
        left = _carrying(lambda home: home.startswith(f"{world.home.parent}/"))
        if not left:
            return
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        time.sleep(0.05)
