"""Secrets of every shape through every command and file; a server's escapes and forgeries in `mcpctl logs`;
names that are paths. The careless server is tests/fixtures/leaky.py."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Env, settle

LEAKY = Path(__file__).parent / "fixtures" / "leaky.py"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----"
)
WEIRD = 'we\tird\\se"cret-4711'
TOKEN = "tok-a1b2c3d4e5f6a7b8c9d0e1f2"  # inherited from the shell, never named in the config
SPLIT = "split-9f8e7d6c5b4a39281706"
URLKEY = "urlkey-5c4b3a29180716253"
B64 = "b64/Kq+Zr9/Wm3Tx7="  # base64 keeps "/" and "+": urllib.parse.quote leaves its "/" as it is
TAIL = "cut-00aa11bb22cc33dd44ee"  # across the 120th character of a garbage line


def leaky(*args: str, **env: str) -> dict[str, object]:
    return {"command": sys.executable, "args": [str(LEAKY), *args], "env": env}


def forms(secret: str) -> list[str]:
    """What must never be found: the value, its lines, and its encodings."""
    pieces = [secret, *(line for line in secret.splitlines() if len(line) >= 3)]
    found = []
    for piece in pieces:
        found += [piece, json.dumps(piece)[1:-1], repr(piece)[1:-1], urllib.parse.quote(piece, safe="")]
        found.append(urllib.parse.quote(piece))
    return found


def leaks(text: str | bytes) -> list[str]:
    data = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    secrets = [PEM, WEIRD, TOKEN, SPLIT, URLKEY, B64, TAIL[:8]]
    return [form for secret in secrets for form in forms(secret) if form in data]


def test_secrets_of_every_shape_reach_no_output_and_no_file(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_API_TOKEN", TOKEN)  # a shell variable the server inherits and echoes
    names = "PEM_KEY,WEIRD,LEAKY_API_TOKEN,SPLIT,B64"
    echo = leaky(PEM_KEY=PEM, WEIRD=WEIRD, SPLIT=SPLIT, B64=B64, LEAK_VARS=names, LEAK_SPLIT=SPLIT)
    garbage = {**leaky("garbage", WEIRD=WEIRD, CUT=TAIL, LEAK_VARS="WEIRD,CUT"), "restart": "never"}
    remote = {"url": f"http://127.0.0.1:9/mcp?key={URLKEY}", "env": {"URLKEY": URLKEY}, "restart": "never"}
    remote["startup_timeout"] = 3
    env.write_config({"echo": echo, "garbage": garbage, "remote": remote})
    outputs = [env.run("apply"), env.run("start", "echo"), env.run("start", "garbage", "--json")]
    assert outputs[1].returncode == 0, outputs[1].stderr
    assert outputs[2].returncode == 4
    settle(env, "echo", lambda s: s["state"] == "ready")
    remote["url"] = f"http://127.0.0.1:9/mcp2?key={URLKEY}"
    env.write_config({"echo": echo, "garbage": garbage, "remote": remote})
    for args in (
        ["start", "remote"],
        ["status"],
        ["status", "--json"],
        ["list"],
        ["list", "--json"],
        ["logs", "echo", "garbage", "-n", "200"],
        ["logs", "echo", "--json", "-n", "200"],
        ["events", "--json"],
        ["events"],
        ["env", "check", "--all", "--json"],
        ["tools", "echo"],
        ["tools", "echo", "--json"],
        ["call", "echo", "leak"],
        ["call", "echo", "leak", "--json"],
        ["call", "echo", "fail"],
        ["call", "echo", "fail", "--json"],
        ["call", "echo", "rpc-error"],
        ["call", "echo", "rpc-error", "--json"],
        ["config", "history", "--json"],
        ["config", "diff"],
        ["config", "diff", "--json"],
        ["doctor", "--json"],
    ):
        outputs.append(env.run(*args))
    assert next(p for p in outputs if p.args[-2:] == ["echo", "fail"]).returncode == 10
    assert "env: *** *** *** *** ***" in next(p for p in outputs if p.args[-2:] == ["echo", "leak"]).stdout
    raw = env.run("call", "echo", "leak", "--unmasked")  # a person asked for the raw result
    assert TOKEN in raw.stdout
    outputs.append(env.run("stop", "--all"))
    for proc in outputs:
        assert leaks(proc.stdout + proc.stderr) == [], (proc.args, proc.stdout, proc.stderr)
    log = env.paths.log_file("echo").read_text()
    assert "split: *** (end)" in log  # the two writes became one line, masked whole
    assert "LEAKY_API_TOKEN=***" in log
    hits = {str(p): leaks(p.read_bytes()) for p in env.home.rglob("*") if p.is_file() and not p.is_socket()}
    assert {path: found for path, found in hits.items() if found} == {}


def test_a_call_by_project_name_from_elsewhere_is_masked_too(env: Env, tmp_path: Path) -> None:
    """`call PROJECT/NAME` from another directory masks with that project's config, not the current one."""
    env.write_config({"echo": leaky(WEIRD=WEIRD, LEAK_VARS="WEIRD")})
    assert env.run("start", "echo").returncode == 0
    elsewhere = Env(env.home, tmp_path)  # no config here: the record names the config file
    for args in (["call", f"{env.workdir.name}/echo", "leak"], ["call", f"{env.workdir.name}/echo", "leak", "--json"]):
        called = elsewhere.run(*args)
        assert called.returncode == 0, called.stderr
        assert "env: ***" in called.stdout
        assert leaks(called.stdout + called.stderr) == [], (args, called.stdout)


def test_a_call_masks_what_the_server_got_though_the_shell_no_longer_has_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The secrets are the values the server runs with, which its shim knows: not what the caller's shell
    would resolve now (a variable unset since, a person without it, a cron job)."""
    env.write_config({"echo": leaky(PLANTED="${AU2_KEY}", LEAK_VARS="PLANTED")})
    monkeypatch.setenv("AU2_KEY", WEIRD)
    assert env.run("start", "echo").returncode == 0
    monkeypatch.delenv("AU2_KEY")
    calls = [["call", "echo", t] for t in ("leak", "fail", "rpc-error")] + [["call", "echo", "leak", "--json"]]
    for args in [*calls, ["tools", "echo"], ["tools", "echo", "--json"]]:
        called = env.run(*args)
        assert leaks(called.stdout + called.stderr) == [], (args, called.stdout, called.stderr)
    assert "env: ***" in env.run("call", "echo", "leak").stdout
    assert WEIRD in env.run("call", "echo", "leak", "--unmasked").stdout  # the server did get it


def test_a_servers_escapes_and_forged_lines_reach_the_terminal_escaped(env: Env) -> None:
    env.write_config({"echo": leaky(LEAK_VARS="")})
    assert env.run("start", "echo").returncode == 0
    text = env.run("logs", "echo", "-n", "50").stdout
    assert "\x1b" not in text
    assert "\r" not in text
    assert "\x07" not in text
    assert "\\x1b[31mRED\\x1b[0m bell\\x07 back\\x08" in text
    assert "junk\\x0d2020-01-01T00:00:00.000Z [mcpctl] forged stamp" in text
    assert "file: invoice\\u202egnp.exe" in text  # the override shown, not obeyed
    assert "\u202e" not in text
    ours = [line for line in text.splitlines() if re.match(r"^\S+Z \[mcpctl\] ", line)]
    assert ours
    assert not [line for line in ours if "forged" in line]
    lines = [json.loads(line) for line in env.run("logs", "echo", "--json", "-n", "50").stdout.splitlines()]
    forged = [line for line in lines if "(forged)" in line["line"]]
    assert [line["source"] for line in forged] == ["server"]
    raw = env.paths.log_file("echo").read_bytes()
    assert b"\x1b" not in raw
    assert b"\r" not in raw
    assert "\u202e".encode() not in raw


@pytest.fixture
def impostor(env: Env) -> Iterator[Path]:
    """A socket outside run/ that answers like a shim: where `../x` would lead."""
    (env.home / "run").mkdir(mode=0o700, parents=True)  # run/../x.sock resolves only when run/ exists
    path = env.home / "x.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as stream:
                for line in stream:
                    message = json.loads(line)
                    if "id" in message:
                        answer = {"jsonrpc": "2.0", "id": message["id"], "result": {"protocolVersion": "2025-11-25"}}
                        stream.write(json.dumps(answer).encode() + b"\n")
                        stream.flush()

    threading.Thread(target=serve, daemon=True).start()
    yield path
    server.close()


@pytest.mark.parametrize(
    "args",
    [
        ["ping", "../x"],
        ["tools", "../x"],
        ["call", "../x", "t"],
        ["connect", "../x"],
        ["logs", "../x"],
        ["status", "../x"],
        ["events", "../x"],
        ["stop", "../x"],
        ["start", "../x"],
        ["restart", "../x"],
        ["metrics", "../x"],
        ["env", "check", "../x"],
        ["env", "rule", "add", "../x", "VAR"],
        ["ping", "../../x"],
        ["ping", "a/b/c"],  # a/b is PROJECT/NAME (projects); a path with two slashes is no name
        ["ping", ".hidden"],
    ],
)
def test_a_name_that_is_a_path_is_unknown_everywhere(env: Env, impostor: Path, args: list[str]) -> None:
    env.write_config({"demo": leaky(LEAK_VARS="")})
    proc = env.run(*args, "--no-start") if args[0] in ("ping", "tools", "call", "connect") else env.run(*args)
    assert proc.returncode in (2, 8), (proc.returncode, proc.stdout, proc.stderr)
    assert "not a server name" in proc.stderr or "unknown server" in proc.stderr
    assert "pong" not in proc.stdout


def test_a_name_is_checked_in_json_errors_too(env: Env) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcpctl", "ping", "../x", "--json"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 8
    assert json.loads(proc.stdout)["error"]["type"] == "unknown_server"
