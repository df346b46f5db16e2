"""Translated text made of other text under a zh_CN locale (real CLI runs, real shims and servers): a failure
held inside another one's message, the spacing where a translated sentence meets a Latin-script value."""

from __future__ import annotations

import os
import re
import signal
import sys

import psutil
import pytest

from tests.conftest import TINY, Env, alive, fixture_server, settle, tiny_server, wait_for


def zh(env: Env, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    with monkeypatch.context() as patch:
        patch.setenv("LANG", "zh_CN.UTF-8")
        proc = env.run(*args)
    return proc.stdout + proc.stderr


def test_a_crash_loops_last_failure_is_translated_its_name_is_not(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record keeps the last failure inside the crash loop's message, in English; status translated the
    outer sentence only. The name is the server's, kept as it is although `failed` is also a msgid."""
    env.write_config({"failed": fixture_server("crash", backoff_base=0.1, backoff_max=0.2, max_failures=2)})
    env.run("start", "failed")
    settle(env, "failed", lambda s: (s.get("last_error") or {}).get("type") == "crash_loop", timeout=30)
    status = zh(env, monkeypatch, "status")
    expected = "failed 已连续失败 2 次，自动重启已停止（最近一次：failed 在就绪前的启动阶段退出了（退出码 3））"
    assert f"crash_loop: {expected}" in status, status
    assert "last:" not in status, status
    assert "exited during startup" not in status, status
    assert "exit code" not in status, status
    message = env.status("failed")["last_error"]["message"]  # the record and --json stay English
    assert message.endswith("(last: failed exited during startup (exit code 3) before it was ready)"), message


def test_how_a_crashed_server_ended_is_translated_its_signal_is_not(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """`killed by SIGKILL` inside a translated crash sentence was left English; the signal's name stays as it is."""
    env.write_config({"t": tiny_server(restart="never")})
    env.run("start", "t")
    os.kill(env.status("t")["pid"], signal.SIGKILL)
    settle(env, "t", lambda s: (s.get("last_error") or {}).get("type") == "crashed", timeout=30)
    status = zh(env, monkeypatch, "status")
    assert re.search(r"crashed: t 运行 \S+ 后意外退出（被 SIGKILL 终止）", status), status
    assert "killed by" not in status, status
    assert env.status("t")["last_error"]["message"].startswith("t exited unexpectedly (killed by SIGKILL) after ")


def test_what_a_lost_shim_left_running_is_said_in_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """status's warning that a server runs unattended was English; the name `failed` (a msgid) stays itself,
    and --json's warning stays English."""
    env.write_config({"failed": {"command": "sh", "args": ["-c", f"{sys.executable} {TINY}; exec sleep 600"]}})
    env.run("start", "failed")
    server = env.status("failed")
    os.kill(server["shim_pid"], signal.SIGKILL)  # sh outlives the shim: the tiny server exits on EOF, sh sleeps on
    wait_for(lambda: not alive(server["shim_pid"]))
    said = zh(env, monkeypatch, "status")
    pid = server["pid"]
    assert f"警告：failed：failed 的服务器进程（pid {pid}）仍在运行，无人监管：`mcpctl stop failed` 可结束它\n" in said
    assert "unattended" not in said, said
    with monkeypatch.context() as patch:
        patch.setenv("LANG", "zh_CN.UTF-8")
        warning = env.status("failed")["warning"]
    assert warning == f"server pid {pid} of failed is still running unattended: `mcpctl stop failed` ends it"
    env.run("stop", "failed")


def test_a_stopped_shims_silence_is_said_in_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"t": tiny_server()})
    env.run("start", "t")
    shim = psutil.Process(env.status("t")["shim_pid"])
    shim.send_signal(signal.SIGSTOP)
    try:
        said = zh(env, monkeypatch, "status")
    finally:
        shim.send_signal(signal.SIGCONT)
    assert re.search(rf"警告：t：它的 shim（pid {shim.pid}）未在 \S+ 秒内应答\n", said), said
    assert "did not answer" not in said, said
    env.run("stop", "t")


def test_a_latin_value_in_a_chinese_sentence_is_spaced_and_kept_as_it_is(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`应来自shell 环境`: the template's CJK met the value's Latin with no space, the value's own words had
    one. A space is put between them; none after full-width punctuation; the path is byte for byte the file's."""
    monkeypatch.delenv("FIXTURE_API_KEY", raising=False)
    (env.workdir / "k.env").write_text("FILE_KEY=q7z\n")
    rules = {"FILE_KEY": {"min_length": 10}}
    server = fixture_server("needs-env", env_file="k.env", required_env=["FIXTURE_API_KEY"], env_rules=rules)
    env.write_config({"amap": server})
    said = zh(env, monkeypatch, "start", "amap")
    assert "  - FIXTURE_API_KEY：缺失（应来自 shell 环境或 env_file）\n" in said, said
    assert f"  - FILE_KEY：短于 10 个字符（来自 env_file {env.workdir / 'k.env'}）\n" in said, said
    assert "q7z" not in said
