"""Lifecycle truth under faults (issue 15): shims that die before they report, a full state disk, a
thousand failures and more, a frozen shim, and a log that rotates faster than it is followed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from mcpctl.paths import Paths
from mcpctl.state import lock_holder
from tests.conftest import TINY, Env, alive, fixture_server, following, tiny_server, wait_for

# Loaded by every Python process that has it on PYTHONPATH; it acts only in shims (and in a brood, which
# forks them). The shim of $DOOMED_SHIM dies before it reports anything, writing first what $DOOMED_SAYS
# says (a line a library might print); every shim, with $SLOW_BOOT set, waits that long between taking its
# lock and writing its first record; with $WEDGED_SHIM set, every shim ignores SIGTERM.
SITECUSTOMIZE = """
import os, sys, time
argv = getattr(sys, "orig_argv", [])
if "mcpctl.shim" in argv and os.environ.get("DOOMED_SHIM"):
    from mcpctl.paths import Paths
    first_ensure = Paths.ensure_server
    def ensure_server(self, name):
        if name == os.environ["DOOMED_SHIM"]:
            os.write(1, os.environ.get("DOOMED_SAYS", "").encode())
            os._exit(1)
        return first_ensure(self, name)
    Paths.ensure_server = ensure_server
if "mcpctl.shim" in argv and os.environ.get("WEDGED_SHIM"):
    import signal
    from mcpctl.shim import signals
    first_install = signals.install
    def install(selector, on_stop):
        first_install(selector, on_stop)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # wedged: it never acts on a stop signal
    signals.install = install
if "mcpctl.shim" in argv and os.environ.get("SLOW_BOOT"):
    from mcpctl.shim.loop import Shim
    first_start = Shim.start
    def start(self):
        time.sleep(float(os.environ["SLOW_BOOT"]))
        first_start(self)
    Shim.start = start
"""


@pytest.fixture
def hooked(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = env.workdir / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", str(hook))


def _shim(env: Env, name: str) -> psutil.Process:
    return psutil.Process(wait_for(lambda: env.status(name).get("shim_pid") or None, timeout=20))


@contextlib.contextmanager
def _frozen(shim: psutil.Process) -> Iterator[None]:
    """The shim stopped (SIGSTOP) for the block, and continued after it, whatever the block did."""
    shim.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        shim.send_signal(signal.SIGCONT)


@pytest.mark.usefixtures("hooked")
@pytest.mark.parametrize("says", ["", "not json\n", '{"event": "lock'])
def test_a_shim_that_dies_before_it_reports_fails_alone(env: Env, monkeypatch: pytest.MonkeyPatch, says: str) -> None:
    monkeypatch.setenv("DOOMED_SHIM", "doomed")
    monkeypatch.setenv("DOOMED_SAYS", says)
    env.write_config({"a": tiny_server(), "doomed": tiny_server(), "c": tiny_server()})
    proc = env.run("start", "--all", "--json")
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    results = {r["name"]: r for r in json.loads(proc.stdout)["results"]}
    assert results["a"]["outcome"] == results["c"]["outcome"] == "started"
    assert results["doomed"]["outcome"] == "failed"
    assert "exited without reporting" in results["doomed"]["error"]["message"]
    assert env.status("a")["state"] == "ready"


@pytest.mark.usefixtures("hooked")
def test_apply_during_a_start_all_leaves_booting_shims_alone(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLOW_BOOT", "5")
    env.write_config({name: tiny_server() for name in ("a", "b", "c")})
    start = subprocess.Popen([sys.executable, "-m", "mcpctl", "start", "--all"], cwd=env.workdir, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    for name in ("a", "b", "c"):  # each shim holds its lock and has written no record yet
        wait_for(lambda name=name: lock_holder(env.paths.instance_lock(name)), timeout=20)
    assert not any(env.state_file(name).exists() for name in ("a", "b", "c"))
    applied = env.run("apply")
    out, err = start.communicate(timeout=60)
    assert start.returncode == 0, (out, err)
    assert applied.returncode == 0, (applied.stdout, applied.stderr)
    assert "not known" not in applied.stdout + applied.stderr
    assert "restart" not in applied.stdout
    assert all(env.status(name)["state"] == "ready" for name in ("a", "b", "c"))


def test_1200_failures_in_a_row_end_in_the_crash_loop_state(env: Env) -> None:
    false = {"command": "/bin/false", "backoff_base": 0.001, "backoff_max": 0.001, "max_failures": 1200}
    env.write_config({"false": {**false, "startup_timeout": 10, "cooldown_base": 1, "cooldown_max": 5}})
    assert env.run("start", "false").returncode == 4  # the first failure is the start's answer
    wait_for(lambda: env.record("false").get("state") == "failed", timeout=240, interval=0.5)
    status = env.status("false")
    assert status["consecutive_failures"] == 1200
    assert status["last_error"]["type"] == "crash_loop"
    assert "internal" not in env.paths.log_file("false").read_text()


def test_a_frozen_shim_is_unresponsive_until_it_goes_on(env: Env) -> None:
    env.write_config({"demo": tiny_server(health_interval=0.2)})
    assert env.run("start", "demo").returncode == 0
    shim = _shim(env, "demo")
    wait_for(lambda: (env.record("demo").get("health") or {}).get("ok"), timeout=20)
    with _frozen(shim):
        began = time.monotonic()
        proc = env.run("check", "demo")
        assert time.monotonic() - began < 15
        assert proc.returncode == 6, (proc.stdout, proc.stderr)
        assert "demo: unresponsive" in proc.stdout
        nagios = env.run("check", "--nagios", "demo")
        assert nagios.returncode == 2, (nagios.stdout, nagios.stderr)  # no client is served through it either
        assert nagios.stdout.startswith("MCPCTL CRITICAL - demo unresponsive")
        status = env.status("demo")
        assert status["state"] == "unresponsive"
        assert "did not answer" in status["warning"]
    proc = env.run("check", "demo")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert "demo: ok" in proc.stdout


def test_a_start_of_a_frozen_shim_fails_and_names_the_shim(env: Env) -> None:
    """Started means MCP-ready: a shim that does not answer serves no client, whatever its last record says,
    so a start that finds one fails (as `check` does), and says which process to end; the others of a
    `start --all` are still already ready. Once it goes on, the same start is ready again."""
    env.write_config({"demo": tiny_server(), "other": tiny_server()})
    assert env.run("start", "--all").returncode == 0
    shim = _shim(env, "demo")
    with _frozen(shim):
        proc = env.run("start", "demo")
        assert proc.returncode == 4, (proc.stdout, proc.stderr)
        assert "[unresponsive]" in proc.stderr
        assert f"the shim of demo (pid {shim.pid}) did not answer" in proc.stderr
        assert "`mcpctl stop demo`" in proc.stderr
        results = {r["name"]: r for r in env.json("start", "--all", expect=4)["results"]}
        assert (results["demo"]["ok"], results["demo"]["outcome"]) == (False, "failed")
        assert results["demo"]["server"]["state"] == "unresponsive"
        assert results["demo"]["error"]["type"] == "unresponsive"
        assert (results["other"]["ok"], results["other"]["outcome"]) == (True, "already_running")
    again = env.run("start", "demo")
    assert (again.returncode, again.stdout.strip()) == (0, f"demo: already ready (pid {env.status('demo')['pid']})")


def test_a_server_that_closes_its_stdout_fails_at_once_and_is_restarted(env: Env) -> None:
    """A stdio server that closed its stdout can answer nothing more: it is no longer ready long before
    three pings (90 s by default) fail, the log and its error say why, and the policy restarts it."""
    server = {**tiny_server(backoff_base=0.2, backoff_max=0.5), "args": [tiny_server()["args"][0], "--close-stdout"]}
    env.write_config({"closer": server})
    assert env.run("start", "closer").returncode == 0
    wait_for(lambda: env.record("closer").get("restarts", 0) >= 1, timeout=10)
    failure = env.status("closer")["last_failure"]
    assert failure["type"] == "crashed", failure
    assert "closer closed its stdout after it was ready but kept running" in failure["message"]
    assert "ending the server: closer closed its stdout" in env.paths.log_file("closer").read_text()
    events = [json.loads(line) for line in env.run("events", "closer", "--json").stdout.splitlines()]
    assert [e["event"] for e in events].index("exited") < [e["event"] for e in events].index("restarted")


def test_a_frozen_shim_is_woken_by_stop_and_stops_as_asked(env: Env) -> None:
    """SIGSTOPped (by a person, or a shell's job control), a shim still takes `stop`'s SIGTERM, which comes
    with a SIGCONT as systemd sends one: it stops its server as asked, not killed once stop's patience ends."""
    env.write_config({"demo": tiny_server(stop_timeout=30)})
    assert env.run("start", "demo").returncode == 0
    shim, server = _shim(env, "demo"), env.status("demo")["pid"]
    shim.send_signal(signal.SIGSTOP)
    proc = env.run("stop", "demo")
    assert proc.returncode == 0, proc.stderr
    assert "leftover" not in proc.stdout
    assert not alive(shim.pid)
    assert not alive(server)
    status = env.status("demo")
    assert (status["state"], status["last_error"]) == ("stopped", None)
    assert json.loads(env.run("events", "demo", "--json").stdout.splitlines()[-1])["event"] == "stopped"


def test_restart_of_a_frozen_shim_stops_and_starts_it_without_waiting_out_a_control_call(env: Env) -> None:
    """A SIGSTOPped shim answers no control call: restart asked it to restart in place all the same and
    waited out the call's 2 s timeout before it stopped (SIGTERM, then SIGCONT) and started it."""
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    shim, server = _shim(env, "demo"), env.status("demo")["pid"]
    shim.send_signal(signal.SIGSTOP)  # continued by the stop the restart is
    began = time.monotonic()
    proc = env.run("restart", "demo", "--json")
    took = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr
    assert took < 1.8, took  # the control call's timeout is 2 s; the whole restart of a tiny server is far less
    assert not alive(shim.pid)
    assert not alive(server)
    status = env.status("demo")
    assert status["state"] == "ready"
    assert status["shim_pid"] != shim.pid
    assert "stopped\n" in env.paths.log_file("demo").read_text()  # the old shim ended its server as asked


@pytest.mark.usefixtures("hooked")
def test_a_wedged_shim_that_stop_has_to_kill_is_stopped_and_its_record_says_so(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEDGED_SHIM", "1")
    # sh outlives the killed shim (the tiny server exits on EOF, then sh sleeps): something is left to end
    wrapped = {"command": "sh", "args": ["-c", f"{sys.executable} {TINY}; exec sleep 600"], "stop_timeout": 0.5}
    env.write_config({"demo": wrapped})
    assert env.run("start", "demo").returncode == 0
    shim, server = _shim(env, "demo"), env.status("demo")["pid"]
    shim.send_signal(signal.SIGSTOP)  # frozen and deaf to SIGTERM: stop kills it, then ends what it left
    proc = env.run("stop", "demo", "--timeout", "0.5")
    assert proc.returncode == 0, proc.stderr
    ended = re.search(r"ended (\d+) leftover process\(es\)", proc.stdout)  # sh, and the server if not gone yet
    assert ended, proc.stdout
    assert int(ended.group(1)) >= 1
    assert not alive(shim.pid)
    assert not alive(server)
    status = env.status("demo")
    assert (status["state"], status["pid"], status["shim_pid"]) == ("stopped", None, None)
    error = status["last_error"]
    assert error["type"] == "shim_lost"
    assert f"(pid {shim.pid}) did not stop in time and was killed" in error["message"]
    assert "still running" not in error["message"]
    last = json.loads(env.run("events", "demo", "--json").stdout.splitlines()[-1])
    assert (last["event"], last["error"]["type"]) == ("stopped", "shim_lost")
    assert not env.paths.socket("demo").exists()
    assert not env.paths.control_socket("demo").exists()
    assert env.run("start", "demo").returncode == 0


def test_a_lock_that_cannot_be_taken_is_said_with_what_to_do_and_doctor_reports_it(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    env.paths.ensure()
    env.paths.lock.mkdir()  # a directory where the state lock's file belongs
    for args in (["start", "demo"], ["stop", "demo"], ["stop", "--all"]):
        proc = env.run(*args)
        assert proc.returncode == 1, (args, proc.stderr)
        assert f"error: cannot take the state lock {env.paths.lock}: Is a directory" in proc.stderr
        assert "remove it (mcpctl makes it again)" in proc.stderr
        assert "report it" not in proc.stderr
    doctor = env.json("doctor", expect=6)
    assert [(f["kind"], f["subject"]) for f in doctor["findings"]] == [("lock", str(env.paths.lock))]
    env.paths.lock.rmdir()
    assert env.run("start", "demo").returncode == 0


def test_stray_signals_leave_a_shim_serving_and_sigquit_stops_it_cleanly(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    shim = _shim(env, "demo")
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM):  # their default would end it, unsaid
        shim.send_signal(sig)
    assert env.run("ping", "demo").returncode == 0
    status = env.status("demo")
    assert (status["state"], status["shim_pid"]) == ("ready", shim.pid)
    shim.send_signal(signal.SIGQUIT)  # as SIGTERM: a stop, its whole tree
    wait_for(lambda: not alive(shim.pid), timeout=20)
    status = env.status("demo")
    assert (status["state"], status["last_error"]) == ("stopped", None)
    assert env.our_processes() == []


# -- a full state disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(env: Env) -> Iterator[Path]:
    """MCPCTL_HOME on a 1 MiB tmpfs of its own."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs as the state dir needs root (CI runs the suite as root)")
    env.home.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(env.home)]
    mounted = subprocess.run(mount, check=False, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield env.home
    finally:
        for proc in env.our_processes():  # nothing may hold the mount when it goes
            proc.kill()
        wait_for(lambda: not env.our_processes(), timeout=20)
        subprocess.run(["umount", "-l", str(env.home)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass  # ENOSPC: the disk is full
    finally:
        os.close(fd)
    return filler


def test_a_full_state_disk_does_not_end_supervision(env: Env, small_disk: Path) -> None:
    env.write_config({"demo": fixture_server("healthy", metrics_interval=0.3, health_interval=0.3)})
    assert env.run("start", "demo").returncode == 0
    shim, server = _shim(env, "demo"), env.servers_running("healthy")[0]
    filler = _fill(small_disk)
    time.sleep(2.0)  # 6 metrics intervals and pings, each of which writes the record
    assert shim.is_running()
    assert alive(server.pid)
    proc = env.run("status", "demo")
    assert proc.returncode == 0, proc.stderr
    assert "ready" in proc.stdout
    assert "No space left on device (its shim supervises on and retries)" in proc.stderr
    status = env.status("demo")
    assert status["state"] == "ready"
    assert "No space left" in status["write_error"]
    assert env.run("check", "demo").returncode == 0

    filler.unlink()  # space again: the shim's next write lands, and says writes work
    wait_for(lambda: env.record("demo").get("state") == "ready" and env.record("demo").get("write_error") is None)
    wait_for(lambda: "writes work again" in Paths(small_disk, "w").log_file("demo").read_text(), timeout=10)

    _fill(small_disk)  # full again: a stop still ends the server and the shim
    env.run("stop", "demo")
    wait_for(lambda: not alive(server.pid) and not alive(shim.pid), timeout=30)


def test_restart_status_and_stop_on_a_full_disk_take_the_shims_word(env: Env, small_disk: Path) -> None:
    env.write_config({"demo": tiny_server(startup_timeout=60)})
    assert env.run("start", "demo").returncode == 0
    shim, old = _shim(env, "demo"), env.status("demo")["pid"]
    filler = _fill(small_disk)  # the file keeps the old run's record: the shim's own is in memory
    began = time.monotonic()
    proc = env.run("restart", "demo", "--json", timeout=120)
    assert time.monotonic() - began < 30, "waited for the file, not the shim"  # a bound, far below startup_timeout
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    (result,) = json.loads(proc.stdout)["results"]
    pid = result["server"]["pid"]
    assert (result["outcome"], alive(pid)) == ("started", True)
    assert pid != old
    for _ in range(5):
        status = env.status("demo")
        assert (status["state"], status["pid"]) == ("ready", pid)
        assert "No space left" in status["write_error"]

    stopped = env.run("stop", "demo")
    assert stopped.returncode == 0, (stopped.stdout, stopped.stderr)
    assert "demo: stopped" in stopped.stdout
    assert not alive(pid)
    wait_for(lambda: not alive(shim.pid), timeout=10)
    filler.unlink()
    status = env.status("demo")
    assert (status["state"], status["last_error"]) == ("stopped", None)  # no shim_lost: it stopped its server


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only for the block (a read-only bind mount of itself: root alone may make one)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (CI runs the suite as root)")
    bound = subprocess.run(["mount", "--bind", str(folder), str(folder)], check=False, capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_shim_whose_final_record_cannot_be_written_is_not_said_to_have_left_its_server_running(env: Env) -> None:
    """A read-only state dir: the shim stops its server as asked, but its final record cannot be written, so
    the record left says ready with a shim that is gone. `status` said "it did not stop the server"; it
    says what it sees (no final record, no server running), and the shim's log says the record was lost."""
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    shim, server = _shim(env, "demo"), env.status("demo")["pid"]
    with _read_only(env.paths.server_dir("demo")):
        stopped = env.run("stop", "demo")
        assert stopped.returncode == 0, stopped.stderr
        assert "demo: stopped" in stopped.stdout
        assert "stopped, but its record could not be written" in stopped.stderr
        assert not alive(shim.pid)
        assert not alive(server)
        status = env.status("demo")
        assert status["state"] == "stopped"
        error = status["last_error"]
        assert error["type"] == "shim_lost"
        assert error["message"] == (
            f"the shim of demo (pid {shim.pid}) is gone; it left no final record (it was killed, or could not "
            "write one) and its server is not running"
        )
    log = env.paths.log_file("demo").read_text()
    assert "Read-only file system: the final record (stopped) is lost; status will say none was left" in log


# -- logs -f across fast rotations ------------------------------------------------------------------

LINE = re.compile(r"shout (\d{9}) ")


def test_logs_follow_loses_no_line_across_fast_rotations(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", log_max_bytes=1_000_000, log_backups=5)})
    assert env.run("start", "demo").returncode == 0
    with following(env, "demo") as output:
        proc = env.run("call", "demo", "shout", "count=200000", "width=10", timeout=120)
        assert proc.returncode == 0, proc.stderr

        def last_line_seen() -> bool:
            return "shout 000199999" in output.read_text()[-4096:]

        wait_for(last_line_seen, timeout=60, interval=0.2)
    numbers = [int(m.group(1)) for m in map(LINE.search, output.read_text().splitlines()) if m]
    assert numbers == list(range(200_000))


def test_the_follower_reads_every_generation_rotated_between_two_looks(tmp_path: Path) -> None:
    from mcpctl.logfile import Follower, LogWriter, parse

    log = tmp_path / "x.log"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    follower = Follower(log)
    seen: list[str] = []
    written = 0
    try:
        writer = LogWriter(log, max_bytes=1000, backups=6, fd=fd)

        def write(count: int) -> int:
            for n in range(written, min(written + count, 2000)):
                writer.write([f"line {n:04d}"])
            return min(written + count, 2000)

        written = write(100)  # ~3 rotations before the first look
        for _ in range(1000):
            for raw in follower.lines():
                seen.append(parse(raw).text)
                if len(seen) % 7 == 0:
                    written = write(7)  # rotations while the follower is between two files
    finally:
        follower.close()
        os.close(fd)
    assert seen == [f"line {n:04d}" for n in range(2000)]


def test_a_failed_record_write_is_kept_in_memory_said_and_retried(tmp_path: Path) -> None:
    from mcpctl.paths import Paths
    from mcpctl.shim.ledger import RETRY_WRITE_AFTER, Ledger

    paths = Paths(tmp_path / "home")  # servers/demo/ does not exist: every write there fails
    now = [100.0]
    ledger = Ledger(paths, "demo", lambda: now[0])
    ledger.write(event="started", details={}, attempt=1)
    assert ledger.record.attempt == 1
    assert "cannot write" in (ledger.record.write_error or "")
    paths.ensure_server("demo")
    ledger.retry()  # too soon: not tried
    assert ledger.record.write_error is not None
    now[0] += RETRY_WRITE_AFTER
    ledger.retry()
    assert ledger.record.write_error is None
    assert json.loads(paths.state_file("demo").read_text())["write_error"] is None
