"""Messages in the user's language: Chinese under a zh_CN locale, English under C and with MCPCTL_LANG=en, and
nothing a script reads changes (real CLI runs, real shims and servers)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import Env, fixture_server, settle, tiny_server

CHINESE = {"LANG": "zh_CN.UTF-8"}
ENGLISH = ({"LANG": "C"}, {"LANG": "zh_CN.UTF-8", "MCPCTL_LANG": "en"})
FAST = {"backoff_base": 0.2, "backoff_max": 0.5, "max_failures": 3}


@contextmanager
def speaking(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> Iterator[None]:
    with monkeypatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        yield


def run(env: Env, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], *args: str) -> Any:
    with speaking(monkeypatch, variables):
        return env.run(*args)


def test_a_failed_start_is_chinese_under_zh_cn_and_english_otherwise(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"gone": {"command": "/nonexistent/mcp-server"}})
    zh = run(env, monkeypatch, CHINESE, "start", "gone")
    assert zh.returncode == 4, zh.stderr
    assert "错误：gone 未能就绪 [command_not_found]：找不到命令：/nonexistent/mcp-server" in zh.stderr
    assert "提示：请安装它，或在 `command` 中写明完整路径" in zh.stderr
    for variables in ENGLISH:
        en = run(env, monkeypatch, variables, "start", "gone")
        assert en.returncode == 4, en.stderr
        assert "error: gone did not become ready [command_not_found]: command not found:" in en.stderr
        assert "hint: install it, or give the full path in `command`" in en.stderr


def test_an_env_preflight_refusal_is_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIXTURE_API_KEY", raising=False)
    env.write_config({"amap": fixture_server("needs-env", required_env=["FIXTURE_API_KEY"])})
    zh = run(env, monkeypatch, CHINESE, "start", "amap")
    assert zh.returncode == 7, zh.stderr
    assert "错误：amap：环境变量检查未通过，未启动任何进程 [env_missing]" in zh.stderr
    assert "FIXTURE_API_KEY：缺失（应来自 shell 环境）" in zh.stderr
    assert "提示：请 export 这些变量，或在配置中设置它们；详见 `mcpctl env check amap`" in zh.stderr
    for variables in ENGLISH:
        en = run(env, monkeypatch, variables, "start", "amap")
        assert en.returncode == 7, en.stderr
        assert "environment check failed, nothing was started" in en.stderr
        assert "FIXTURE_API_KEY: missing (expected from the shell)" in en.stderr
    assert env.our_processes() == []


def test_a_cooldown_skip_is_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"bad": fixture_server("crash", cooldown_base=600, **FAST)})
    env.run("start", "bad")
    settle(env, "bad", lambda s: s.get("state") == "failed", timeout=30)
    zh = run(env, monkeypatch, CHINESE, "start", "bad")
    assert zh.returncode == 5, zh.stderr
    assert re.match(r"已跳过：bad 连续失败 3 次后处于冷却期，\S+ 后才会再次尝试\n", zh.stderr), zh.stderr
    assert "提示：使用 --force 立即启动" in zh.stderr
    assert "失败 (冷却期还剩 " in run(env, monkeypatch, CHINESE, "status").stdout
    for variables in ENGLISH:
        en = run(env, monkeypatch, variables, "start", "bad")
        assert en.returncode == 5, en.stderr
        assert en.stderr.startswith("skipped: bad is cooling down after 3 failure(s); next try in "), en.stderr
        assert "hint: use --force to start now" in en.stderr
    # --json is English whatever the language: scripts read it
    with speaking(monkeypatch, CHINESE):
        result = env.json("start", "bad", expect=5)["results"][0]
    assert result["error"]["message"].startswith("bad is cooling down after 3 failure(s)")
    assert result["error"]["hint"] == "use --force to start now"


_EVERY_HELP = """
import typer
from typer._click.core import Context
from mcpctl.cli import app
from mcpctl.cli.help import localize

def helps(cmd, parent, name):
    ctx = Context(cmd, info_name=name, parent=parent, help_option_names=["-h", "--help"])
    yield cmd.get_help(ctx)
    for sub_name, sub in getattr(cmd, "commands", {}).items():
        yield from helps(sub, ctx, sub_name)

tree = typer.main.get_command(app)
localize(tree)
print("\\n\\f\\n".join(helps(tree, None, "mcpctl")))
"""


def test_help_is_chinese_fits_80_columns_and_english_under_c(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcpctl.i18n import cells

    with speaking(monkeypatch, {**CHINESE, "COLUMNS": "80"}):
        top = env.run("--help")
        assert "用法：mcpctl [OPTIONS] COMMAND [ARGS]..." in top.stdout
        assert "启动、停止和监控 MCP 服务器" in top.stdout
        assert "选项：" in top.stdout
        assert "命令：" in top.stdout
        start = env.run("start", "--help").stdout
        assert "即使处于退避或崩溃循环的冷却期也要启动。" in start
        assert "显示此帮助信息并退出。" in start
        every = subprocess.run([sys.executable, "-c", _EVERY_HELP], capture_output=True, text=True, check=True).stdout
    pages = every.split("\n\f\n")
    assert len(pages) > 40, every[:500]
    assert all("用法：" in page for page in pages)
    wide = [line for line in every.splitlines() if cells(line) > 80]
    assert wide == []
    for variables in ENGLISH:
        en = run(env, monkeypatch, variables, "start", "--help").stdout
        assert en.startswith("Usage: mcpctl start [OPTIONS] [names]...")
        assert "Start even during a backoff or crash-loop cooldown." in en
        assert "Show this message and exit." in en


def _timeless(payload: Any) -> Any:
    """The status JSON without what changes from one call to the next (times, samples)."""
    if isinstance(payload, dict):
        moving = {"uptime_s", "metrics", "health", "retry_in_s"}
        return {k: _timeless(v) for k, v in payload.items() if k not in moving}
    if isinstance(payload, list):
        return [_timeless(v) for v in payload]
    return payload


def test_status_json_is_the_same_in_every_language(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"t": tiny_server(), "gone": {"command": "/nonexistent/mcp-server"}})
    assert env.run("start", "t").returncode == 0
    env.run("start", "gone")
    outputs = [run(env, monkeypatch, v, "status", "--json").stdout for v in (CHINESE, *ENGLISH)]
    parsed = [_timeless(json.loads(out)) for out in outputs]
    assert parsed[0] == parsed[1] == parsed[2]
    strip = [re.sub(r'"(uptime_s|ts|cpu_percent|[a-z_]*bytes)": [0-9.]+', "", out) for out in outputs]
    assert all(out.isascii() for out in strip), strip[0]  # nothing Chinese slipped into --json
    assert "command not found" in outputs[0]


def test_init_writes_chinese_comments_and_a_valid_config(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    with speaking(monkeypatch, CHINESE):
        assert env.run("init").returncode == 0, "init failed"
        text = env.config.read_text()
        assert "# mcpctl.toml：mcpctl 运行的 MCP 服务器" in text
        assert "# # 健康检查：每 health_interval 秒发一次 MCP ping" in text
        valid = env.run("config", "validate")
    assert valid.returncode == 0, valid.stderr


def test_the_same_cli_module_in_english_is_what_completions_see() -> None:
    """The completions are generated from the untranslated tree, whatever LANG says."""
    proc = subprocess.run(
        [sys.executable, "completions/generate.py", "--check"],
        env={"PATH": "/usr/bin:/bin", "LANG": "zh_CN.UTF-8", "MCPCTL_LANG": "zh_CN"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_empty_field_never_shows_the_catalog_header(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template field filled with "" ({detail} of a handshake timeout) stays empty: gettext("") is the
    catalog's header (Project-Id-Version: ...), which used to end the message and split the status table."""
    env.write_config({"silent": {"command": "sleep", "args": ["100"], "startup_timeout": 1, "restart": "never"}})
    zh = run(env, monkeypatch, CHINESE, "start", "silent")
    assert zh.returncode == 4, zh.stderr
    assert "错误：silent 未能就绪 [handshake_timeout]：silent 未能在 1 秒内就绪\n" in zh.stderr
    status = run(env, monkeypatch, CHINESE, "status").stdout
    assert "Project-Id-Version" not in zh.stderr + status
    assert len(status.splitlines()) == 2, status  # the header and one row


def test_the_everyday_outputs_are_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `alerts`, `env`, `config` and `apply --dry-run` print was English whatever the language."""
    env.write_config({"t": tiny_server(), "u": tiny_server(env={"X": "${MCPCTL_TEST_UNSET}"})})
    monkeypatch.delenv("MCPCTL_TEST_UNSET", raising=False)

    def zh(*args: str) -> str:
        proc = run(env, monkeypatch, CHINESE, *args)
        return proc.stdout + proc.stderr

    assert zh("alerts") == "没有正在触发的告警\n"
    assert zh("env", "rules").startswith("没有规则（可用 `mcpctl env rule add")
    check = zh("env", "check")
    assert "t: 正常\n" in check
    assert "u: 1 个问题\n" in check
    assert re.search(r"\n  X +缺失 +config +它引用的变量未设置\n", check), check
    assert zh("config", "validate").startswith(f"正常：{env.config}：2 个服务器：t, u\n")
    plan = zh("apply", "--dry-run")
    assert plan.startswith(f"{env.config} 的计划（之前未应用过）：\n"), plan
    assert re.search(r"\n  start +t +配置中新增\n", plan), plan
    assert plan.endswith("试运行：未做任何更改\n")
    assert zh("config", "history").startswith("尚未应用任何配置版本")
    assert zh("metrics", "t").startswith("该时间段内没有 t 的样本")


def test_config_problems_are_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.config.write_text('[servers.a]\ncommand = "x"\nbogus = 1\nstartup_timeout = "x"\n[servers.b]\ncomand = "x"\n')
    zh = run(env, monkeypatch, CHINESE, "config", "validate")
    assert zh.returncode == 2, zh.stderr
    assert f"错误：{env.config}：servers.a：未知字段 'bogus'\n" in zh.stderr
    assert f"错误：{env.config}：servers.a.startup_timeout：应为正数秒数，实际为字符串 'x'\n" in zh.stderr
    assert f"错误：{env.config}：servers.b：未知字段 'comand'（是否想写 'command'？）\n" in zh.stderr
    start = run(env, monkeypatch, CHINESE, "start", "a").stderr
    assert "提示：上面还列出了 2 个问题；请修正配置文件后重新运行命令" in start
    for variables in ENGLISH:
        en = run(env, monkeypatch, variables, "config", "validate").stderr
        assert "servers.b: unknown field 'comand' (did you mean 'command'?)" in en
        assert "servers.a.startup_timeout: expected a positive number of seconds, got the string 'x'" in en


def test_doctor_and_check_are_chinese_and_name_a_server_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    env.write_config({"t": tiny_server()})
    assert env.run("start", "t").returncode == 0
    assert run(env, monkeypatch, CHINESE, "check").stdout.startswith("t: 正常 (就绪")
    status = env.status("t")
    for proc in (psutil.Process(status["shim_pid"]), psutil.Process(status["pid"])):
        with contextlib.suppress(psutil.NoSuchProcess):  # the server may end with its shim
            proc.kill()
        proc.wait(timeout=10)  # not `status`: it would put the record right
    zh = run(env, monkeypatch, CHINESE, "doctor").stdout
    assert "state_mismatch t: 记录显示有 shim 在运行它，但实际没有（--fix 可修复）\n" in zh, zh
    assert "：没有 shim 在此监听" in zh
    en = run(env, monkeypatch, {"LANG": "C"}, "doctor").stdout
    assert "state_mismatch t: the record says a shim runs it, but none does" in en, en
    fixed = run(env, monkeypatch, CHINESE, "doctor", "--fix").stdout
    assert "-> 已根据正在运行的进程重建记录\n" in fixed, fixed
    assert "-> 已删除\n" in fixed
    assert "Project-Id-Version" not in fixed


def test_usage_errors_are_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """click words its usage errors in English (it has no catalog); they are translated whole when shown."""
    env.write_config({"t": tiny_server()})
    cases = [
        (("start", "--forc"), "错误：没有选项：--forc（可用的选项：--force）\n"),
        (("start", "--timeout", "x", "t"), "错误：'--timeout' 的值无效：'x' 不是有效的浮点数。\n"),
        (("start", "--timeout", "-1", "t"), "错误：'--timeout' 的值无效：应为正数秒数，实际为 -1\n"),
        (("call", "t"), "错误：缺少参数 'tool'。\n"),
        (("logs", "-n"), "错误：选项 '-n' 需要一个值。\n"),
        (("stat",), "错误：没有命令 'stat'。是否想用 'start', 'status', 'restart'？\n"),
        (("config", "validate", "extra"), "错误：有多余的参数（extra）\n"),
        (("start", "bad/../name"), "错误：未知的服务器 'bad/../name'：不是服务器名（"),
        (("env", "rule", "rm", "t", "FOO"), "错误：没有用 `mcpctl env rule add` 为 't' 添加过 FOO 的规则\n"),
        (("metrics", "t", "--since", "zz"), "错误：'zz' 不是时长（请使用如 30s、10m、2h、1d）\n提示：例如 --since"),
    ]
    for args, expected in cases:
        zh = run(env, monkeypatch, CHINESE, *args)
        assert zh.returncode in (2, 8), (args, zh.stderr)
        assert zh.stderr.startswith(expected), (args, zh.stderr)
    for variables in ENGLISH:
        en = run(env, monkeypatch, variables, "stat").stderr
        assert en.startswith("error: No such command 'stat'. Did you mean 'start', 'status', 'restart'?\n"), en


def test_forget_and_env_refusals_are_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPCTL_TEST_UNSET", raising=False)
    env.write_config({"t": tiny_server(), "u": tiny_server(env={"X": "${MCPCTL_TEST_UNSET}"})})
    assert env.run("start", "t").returncode == 0
    forget = run(env, monkeypatch, CHINESE, "forget", "t").stderr
    assert re.match(r"错误：t 状态为就绪（shim pid \d+）；未清除任何内容\n", forget), forget
    for command in (("start", "u"), ("resume",)):
        refused = run(env, monkeypatch, CHINESE, *command).stderr
        assert "\n  - env.X：${MCPCTL_TEST_UNSET} 未设置且没有默认值" in refused, refused
        assert "missing environment" not in refused


def test_tools_clients_gateway_and_history_are_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"demo": fixture_server("healthy")})
    assert env.run("start", "demo").returncode == 0

    def zh(*args: str) -> str:
        proc = run(env, monkeypatch, CHINESE, *args)
        return proc.stdout + proc.stderr

    assert re.match(r"demo：pong，用时 [0-9.]+ 毫秒\n", zh("ping", "demo"))
    assert zh("call", "demo", "add", "a=1.5", "b=1").startswith("错误：demo add：a='1.5' 不是整数\n")
    assert zh("call", "demo", "add", "a=1").startswith("错误：add 需要 b：请传入 b=...\n提示：见 `mcpctl tools demo`\n")
    assert zh("call", "demo", "nope").startswith("错误：demo 没有工具 'nope'（它有：add, ")
    assert zh("gateway", "status") == "gateway：已停止\n"
    assert zh("client", "setup", "nope").startswith("错误：未知的客户端 'nope'\n提示：请使用其中之一：")
    assert re.match(r"错误：项目 '\S+' 尚未应用任何配置版本\n提示：运行 `mcpctl apply` 记录一个", zh("config", "diff"))
    en = run(env, monkeypatch, {"LANG": "C"}, "call", "demo", "add", "a=1").stderr
    assert en == "error: add needs b: pass b=...\nhint: see `mcpctl tools demo`\n"


def test_apply_init_and_history_are_chinese_under_zh_cn(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCPCTL_TEST_UNSET", raising=False)
    env.write_config({"t": tiny_server(), "u": tiny_server(env={"X": "${MCPCTL_TEST_UNSET}"})})
    applied = run(env, monkeypatch, CHINESE, "apply")
    assert re.search(r"\nt：已启动，用时 [0-9.]+ 秒就绪（pid \d+）\n", applied.stdout), applied.stdout
    assert "错误：u：start 失败：环境变量无效：u：缺少环境变量：env.X：" in applied.stderr, applied.stderr
    assert applied.stdout.endswith("，记为版本 1\n")
    assert run(env, monkeypatch, CHINESE, "config", "history").stdout.endswith("* 配置文件当前就是此版本\n")
    assert run(env, monkeypatch, CHINESE, "config", "diff").stdout.endswith("没有差异\n")
    target = env.workdir / "other" / "mcpctl.toml"
    wrote = run(env, monkeypatch, CHINESE, "init", str(target)).stdout
    assert wrote.startswith(f"已写入 {target}，含 "), wrote
    assert "\n下一步：mcpctl -f " in wrote


def test_token_client_import_and_gateway_refusals_are_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"t": tiny_server()})
    cases = [
        (("token", "create", "x", "--expires", "3q"), "错误：--expires：应为 30d、12h 或 90m 这样的时长"),
        (("token", "create", "bad name"), "错误：无效的令牌名 'bad name'\n提示：请使用字母、数字、'.'、'_' 或 '-'\n"),
        (("client", "restore", "cursor"), "错误：没有 cursor 文件的备份\n提示：`mcpctl client setup cursor` 在写入前"),
        (("config", "import", "/nonexistent.json"), "错误：/nonexistent.json：没有这个文件\n"),
        (("gateway", "start"), f"错误：{env.config}：没有 [gateway] 表\n"),
    ]
    for args, expected in cases:
        zh = run(env, monkeypatch, CHINESE, *args)
        assert zh.returncode == 2, (args, zh.stderr)
        assert zh.stderr.startswith(expected), (args, zh.stderr)
    en = run(env, monkeypatch, {"LANG": "C"}, "token", "create", "bad name").stderr
    assert en == "error: invalid token name 'bad name'\nhint: use letters, digits, '.', '_' or '-'\n"


def test_the_state_dirs_refusals_are_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder in the state dir that others can read, and a folder above it that others can write: each
    refusal and its hint in Chinese, with the path and the mode as they are."""
    env.write_config({"t": tiny_server()})
    assert env.run("start", "t").returncode == 0
    assert env.run("stop", "t").returncode == 0
    logs = env.paths.log_file("t").parent
    logs.chmod(0o755)
    zh = run(env, monkeypatch, CHINESE, "logs", "t")
    assert zh.returncode == 1, zh.stderr
    assert zh.stderr == (
        f"错误：拒绝使用 {logs}：它权限为 0o755，不是 0o700（mcpctl 从不修改不是它创建的目录）\n"
        "提示：请把它移出状态目录（mcpctl 会重新创建自己的），或运行 `mcpctl doctor`\n"
    )
    logs.chmod(0o700)
    open_folder = env.home.parent / "open"
    open_folder.mkdir(mode=0o700)
    open_folder.chmod(0o777)
    monkeypatch.setenv("MCPCTL_HOME", str(open_folder / "state"))
    zh = run(env, monkeypatch, CHINESE, "status")
    assert zh.returncode == 1, zh.stderr
    assert zh.stderr.startswith(f"错误：拒绝使用 {open_folder}（位于状态目录 {open_folder / 'state'} 之上）"), zh.stderr
    from mcpctl.privdir import _private_group

    bits = "o" if _private_group(os.getgid()) else "go"  # a group of the user alone lets nobody in
    assert f"提示：请运行 `chmod {bits}-w {open_folder}`，或请选择" in zh.stderr
