"""How mcpctl talks: quiet mode, progress while waiting (spinner on a terminal, lines otherwise), NO_COLOR."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from tests.conftest import Env, fixture_server, tiny_server


def _on_a_terminal(env: Env, *args: str, extra_env: dict[str, str] | None = None) -> str:
    """Run mcpctl with stdout and stderr on a pseudo-terminal; everything it wrote."""
    main, secondary = os.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpctl", *args],
        cwd=env.workdir,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=environment,
    )
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


def test_quiet_prints_only_errors(env: Env) -> None:
    env.write_config({"demo": tiny_server(), "bad": fixture_server("crash", restart="never")})
    started = env.run("-q", "start", "demo")
    assert (started.returncode, started.stdout, started.stderr) == (0, "", "")
    assert env.run("-q", "status", "demo").stdout == ""
    assert env.run("-q", "status", "bad").returncode == 3
    failed = env.run("-q", "start", "bad")
    assert failed.returncode == 4
    assert failed.stdout == ""
    assert "error: bad did not become ready" in failed.stderr
    as_json = env.run("-q", "status", "demo", "--json")
    assert '"state": "ready"' in as_json.stdout  # --json still prints: it is the output asked for
    stopped = env.run("-q", "stop", "demo")
    assert (stopped.returncode, stopped.stdout) == (0, "")


def test_a_slow_start_prints_progress_lines_off_a_terminal(env: Env) -> None:
    env.write_config({"slow": {**fixture_server("log-ready"), "readiness": "alive", "ready_after": 6}})
    proc = env.run("start", "slow")
    assert proc.returncode == 0, proc.stderr
    assert "starting slow: still waiting (5s)" in proc.stderr
    assert proc.stdout.startswith("slow: ready in ")


def test_a_spinner_with_elapsed_time_on_a_terminal(env: Env) -> None:
    env.write_config({"slow": {**fixture_server("log-ready"), "readiness": "alive", "ready_after": 1.5}})
    out = _on_a_terminal(env, "start", "slow")
    assert "⠋ starting slow 0.5s" in out
    assert "\r\x1b[2K" in out  # the spinner's line is cleared before the result
    assert "slow: ready in " in out


def test_no_color_on_a_terminal(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    plain = _on_a_terminal(env, "status", extra_env={"NO_COLOR": "1"})
    assert "demo" in plain
    assert "\x1b[3" not in plain  # no foreground colour codes
    coloured = _on_a_terminal(env, "status", extra_env={"NO_COLOR": ""})
    assert "demo" in coloured
    assert "\x1b[" in coloured  # the same table on a terminal without NO_COLOR is styled


def _columns_start_where_the_header_says(text: str) -> None:
    header, *rows = text.splitlines()
    starts = [header.index(word) for word in ("TRANSPORT", "ENV", "COMMAND")]
    assert rows
    for row in rows:
        for start in starts:
            assert row[start - 2 : start] == "  ", (row, start)
            assert row[start] != " ", (row, start)


def test_list_is_an_aligned_table(env: Env) -> None:
    # list printed `NAME  [stdio]  COMMAND  env: ...` lines, each as long as its own name.
    env.write_config(
        {
            "a": tiny_server(),
            "a-much-longer-name": {**tiny_server(), "env": {"TOKEN": "secret-value-1"}},
            "web": {"url": "http://127.0.0.1:9/mcp"},
        }
    )
    listed = env.run("list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split() == ["NAME", "TRANSPORT", "ENV", "COMMAND"]
    _columns_start_where_the_header_says(listed.stdout)
    assert "secret-value-1" not in listed.stdout
    assert "TOKEN" in listed.stdout
    everywhere = env.run("list", "-A")
    assert everywhere.returncode == 0, everywhere.stderr
    assert "w/a-much-longer-name" in everywhere.stdout
    _columns_start_where_the_header_says(everywhere.stdout)
