"""Logs and events: time-stamped lines, rotation under a fast writer, `logs -f` across rotations, events."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcpctl.logfile import LogWriter, parse, tail
from tests.conftest import Env, fixture_server, following, tiny_server, wait_for

LINE = re.compile(r"shout (\d{9}) ")


def _shouted(paths: list[Path]) -> list[int]:
    numbers = []
    for path in paths:
        for raw in path.read_text().splitlines():
            match = LINE.search(raw)
            if match:
                numbers.append(int(match.group(1)))
    return numbers


def _generations(log: Path) -> list[Path]:
    """The log's files, oldest first."""
    older = sorted(log.parent.glob(log.name + ".*"), key=lambda p: -int(p.suffix[1:]))
    return [*older, log]


def test_rotation_under_a_fast_writer_loses_and_repeats_nothing(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", log_max_bytes=1_000_000, log_backups=40)})
    assert env.run("start", "demo").returncode == 0
    started = time.monotonic()
    proc = env.run("call", "demo", "shout", "count=200000", "width=100")  # ~20 MB of stderr at full speed
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    log = env.paths.logs / "demo.log"
    files = _generations(log)
    assert 15 <= len(files) <= 41
    assert all(path.stat().st_size <= 1_000_000 for path in files)
    assert _shouted(files) == list(range(200_000))  # every line once, in order, across the generations
    assert elapsed < 30  # the server never waited long on a full pipe
    # Every line is time-stamped; the shim's own lines are marked.
    sample = parse(log.read_text().splitlines()[-1])
    assert sample.time is not None
    assert abs(sample.time - time.time()) < 60


def test_backups_are_bounded(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", log_max_bytes=100_000, log_backups=2)})
    assert env.run("start", "demo").returncode == 0
    assert env.run("call", "demo", "shout", "count=20000", "width=60").returncode == 0
    log = env.paths.logs / "demo.log"
    assert sorted(p.name for p in log.parent.glob("demo.log*")) == ["demo.log", "demo.log.1", "demo.log.2"]
    kept = _shouted(_generations(log))
    assert kept == list(range(kept[0], 20_000))  # the newest lines, contiguous: the oldest were dropped


def test_logs_shows_the_last_lines_and_since(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", log_max_bytes=50_000, log_backups=5)})
    assert env.run("start", "demo").returncode == 0
    assert env.run("call", "demo", "shout", "count=3000", "width=40").returncode == 0
    last = env.run("logs", "demo", "-n", "5").stdout.splitlines()
    assert len(last) == 5
    assert [int(LINE.search(line).group(1)) for line in last if LINE.search(line)][-1] == 2999  # type: ignore[union-attr]
    many = env.run("logs", "demo", "-n", "2500").stdout.splitlines()
    assert len(many) == 2500  # reaches back into the rotated files
    as_json = [json.loads(line) for line in env.run("logs", "demo", "-n", "3", "--json").stdout.splitlines()]
    assert {entry["server"] for entry in as_json} == {"demo"}
    assert {entry["source"] for entry in as_json} <= {"server", "mcpctl"}
    recent = env.run("logs", "demo", "--since", "1h").stdout
    assert "ready in" in recent
    assert env.run("logs", "demo", "--since", "yesterday").returncode == 2


def test_n_and_since_together_show_the_last_n_since_then(env: Env) -> None:
    # --since made -n ignored: `logs -n 5 --since 1h` printed every line of the hour.
    env.write_config({"one": fixture_server("healthy"), "two": fixture_server("healthy")})
    assert env.run("start", "one", "two").returncode == 0
    assert env.run("call", "one", "shout", "count=40", "width=10").returncode == 0
    last = env.run("logs", "--since", "1h", "-n", "5").stdout.splitlines()
    assert len(last) == 5
    assert last[-1].startswith("one | ")
    assert "shout 000000039 " in last[-1]
    assert len(env.run("logs", "--since", "1h").stdout.splitlines()) > 40  # no -n: all since then
    assert len(env.run("logs", "one", "--since", "1h", "-n", "0").stdout.splitlines()) == 0
    events = [json.loads(line) for line in env.run("events", "--since", "1h", "-n", "2", "--json").stdout.splitlines()]
    assert [e["event"] for e in events] == ["ready", "ready"]
    assert len(env.run("events", "--since", "1h").stdout.splitlines()) > 2


def test_logs_of_several_servers_interleave_with_names(env: Env) -> None:
    env.write_config({"one": fixture_server("healthy"), "two": fixture_server("healthy")})
    assert env.run("start", "one", "two").returncode == 0
    out = env.run("logs", "one", "two", "-n", "50").stdout.splitlines()
    assert any(line.startswith("one | ") for line in out)
    assert any(line.startswith("two | ") for line in out)
    stamps = [line.split(" | ", 1)[1].split(" ", 1)[0] for line in out]
    assert stamps == sorted(stamps)


def test_logs_follow_across_rotation(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", log_max_bytes=200_000, log_backups=10)})
    assert env.run("start", "demo").returncode == 0
    with following(env, "demo") as output:
        assert env.run("call", "demo", "shout", "count=10000", "width=80").returncode == 0  # ~4 rotations
        log = env.paths.logs / "demo.log"
        assert len(_generations(log)) >= 4
        wait_for(lambda: "shout 000009999" in output.read_text()[-4096:], timeout=30, interval=0.1)
    numbers = [int(m.group(1)) for m in map(LINE.search, output.read_text().splitlines()) if m]
    assert numbers == list(range(10_000))


def test_events_record_the_lifecycle(env: Env) -> None:
    env.write_config({"demo": fixture_server("die-after", env={"DIE_AFTER": "1.5"}, backoff_base=0.2)})
    assert env.run("start", "demo").returncode == 0
    wait_for(lambda: "restarted" in env.run("events", "demo").stdout, timeout=15)
    assert env.run("stop", "demo").returncode == 0
    events = [json.loads(line) for line in env.run("events", "demo", "--json").stdout.splitlines()]
    kinds = [e["event"] for e in events]
    for kind in ("started", "ready", "exited", "backoff", "restarted", "stopped"):
        assert kind in kinds, kinds
    exited = next(e for e in events if e["event"] == "exited")
    assert exited["code"] == 9
    assert exited["error"] == "crashed"
    assert all(e["server"] == "demo" for e in events)
    human = env.run("events", "demo", "-n", "2").stdout.splitlines()
    assert len(human) == 2
    assert human[-1].split()[1:3] == ["demo", "stopped"]


def test_events_follow(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    follower = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", "events", "demo", "-f", "--json"],
        cwd=env.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.8)
        assert env.run("start", "demo").returncode == 0
        assert env.run("stop", "demo").returncode == 0
        time.sleep(0.8)
    finally:
        follower.send_signal(signal.SIGINT)
        out, _ = follower.communicate(timeout=10)
    assert [json.loads(line)["event"] for line in out.splitlines()] == ["started", "ready", "stopped"]


def test_log_writer_rotates_between_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        writer = LogWriter(log, max_bytes=1000, backups=3, fd=fd)
        for n in range(100):
            writer.write([f"line {n:04d}"], ours=n % 2 == 0)
    finally:
        os.close(fd)
    kept = [line for path in _generations(log) for line in map(parse, path.read_text().splitlines())]
    assert [line.text for line in kept] == [f"line {n:04d}" for n in range(100 - len(kept), 100)]
    assert [line.ours for line in kept] == [int(line.text[-4:]) % 2 == 0 for line in kept]
    assert [line.text for line in tail(log, 7)] == [f"line {n:04d}" for n in range(93, 100)]


def test_logs_and_events_with_n_past_what_exists_print_everything(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    assert env.run("stop", "demo").returncode == 0
    written = [line.split(" ", 1)[1] for line in (env.paths.logs / "demo.log").read_text().splitlines()]
    assert 3 < len(written) < 20  # fewer lines than the default -n 20

    def shown(*args: str) -> list[str]:
        return [line.split(" ", 1)[1] for line in env.run("logs", "demo", *args).stdout.splitlines()]

    assert shown() == written
    assert shown("-n", str(len(written) + 1)) == written
    events = env.run("events", "demo", "--json").stdout.splitlines()
    assert len(events) == 3  # started, ready, stopped
    assert env.run("events", "demo", "-n", "5", "--json").stdout.splitlines() == events
    assert env.run("logs", "demo", "-n", "0").stdout == ""
    assert env.run("logs", "demo", "-n", "-1").returncode == 2
