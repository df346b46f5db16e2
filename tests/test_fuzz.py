"""Fuzzed inputs: the config loader, env interpolation, and the JSON-RPC framing of the shim's socket and
of `mcpctl connect`. Whatever arrives: never a traceback, never a hang."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpctl.config.interpolate import InterpolationError, interpolate
from mcpctl.config.load import from_document, parse
from mcpctl.config.model import Problem
from tests.conftest import Env

FIELDS = [
    "command", "args", "env", "cwd", "url", "startup_timeout", "stop_timeout", "readiness", "ready_pattern",
    "restart", "backoff_base", "max_failures", "health_interval", "alerts", "env_file", "inherit_env",
    "required_env", "env_rules", "log_max_bytes", "log_backups", "bogus",
]  # fmt: skip
TINY = Path(__file__).resolve().parent / "fixtures" / "tiny.py"
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=30)
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)
servers = st.dictionaries(
    st.text(min_size=1, max_size=12), st.dictionaries(st.sampled_from(FIELDS), values, max_size=6), max_size=4
)


def _without_none(value: Any) -> Any:
    """TOML has no null: drop None values (as a TOML writer must) so the document can be written."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


@given(document=st.dictionaries(st.sampled_from(["servers", "mcpServers", "alerts", "env_rules", "x"]), values))
def test_any_document_gives_a_config_or_problems(document: dict[str, Any]) -> None:
    config, problems = from_document(document, Path("fuzz.toml"))
    assert (config is None) == bool(problems)
    assert all(isinstance(p, Problem) and p.text for p in problems)


@given(table=servers)
def test_any_server_table_through_toml(table: dict[str, Any]) -> None:
    text = tomli_w.dumps({"servers": _without_none(table)})
    config, problems = parse(text, Path("fuzz.toml"))
    if config is not None:
        assert set(config.servers) == set(table)
    for problem in problems:
        assert "\n" not in problem.text  # one line each


@given(text=st.text(max_size=200))
def test_any_text_is_toml_or_a_clean_problem(text: str) -> None:
    for suffix in ("toml", "json"):
        config, problems = parse(text, Path(f"fuzz.{suffix}"))
        assert config is not None or problems


@given(
    text=st.text(alphabet=st.sampled_from("${}:-$AB_x a\\"), max_size=60),
    lookup=st.dictionaries(st.sampled_from(["A", "B", "A_", "x"]), st.text(max_size=5)),
)
def test_interpolation_returns_text_or_a_clear_error(text: str, lookup: dict[str, str]) -> None:
    try:
        result = interpolate(text, lookup)
    except InterpolationError as exc:
        result = str(exc)
        assert result.startswith(("$", "expected")), result  # says what is wrong, in one line
        assert "\n" not in result
    else:
        assert "$" in text or result == text


def _start_tiny(env: Env) -> Path:
    env.write_config({"tiny": {"command": sys.executable, "args": [str(TINY)]}})
    assert env.run("start", "tiny").returncode == 0
    return env.paths.socket("tiny")


def _answers_status(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
        reply = sock.makefile("rb").readline()
    return bool(json.loads(reply).get("result") == {})


@SLOW
@given(chunks=st.lists(st.binary(max_size=2000), max_size=8))
def test_the_shim_survives_any_bytes_in_any_pieces(env: Env, chunks: list[bytes]) -> None:
    path = env.paths.socket("tiny")
    if not path.exists():
        path = _start_tiny(env)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        for chunk in chunks:  # partial writes: a message may be split anywhere
            sock.sendall(chunk)
            time.sleep(0.001)
    assert _answers_status(path)


def test_the_shim_survives_a_huge_line_and_keeps_the_connection(env: Env) -> None:
    path = _start_tiny(env)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(b"[" * (17 * 1024 * 1024) + b"\n")  # past the 16 MiB line limit
        sock.sendall(b'{"jsonrpc":"2.0","id":"after","method":"ping"}\n')
        reader = sock.makefile("rb")
        answers = [json.loads(reader.readline()) for _ in range(2)]
    assert answers[0]["error"]["code"] == -32700
    assert answers[-1] == {"jsonrpc": "2.0", "id": "after", "result": {}}
    assert _answers_status(path)


@SLOW
@given(data=st.binary(max_size=3000))
def test_connect_ends_cleanly_on_any_input(env: Env, data: bytes) -> None:
    path = env.paths.socket("tiny")
    if not path.exists():
        _start_tiny(env)
    proc = subprocess.run(
        [sys.executable, "-m", "mcpctl", "connect", "tiny", "--no-start"],
        input=data,
        capture_output=True,
        cwd=env.workdir,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    for line in proc.stdout.splitlines():  # whatever came back is JSON-RPC, one message a line
        assert json.loads(line)["jsonrpc"] == "2.0"


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
