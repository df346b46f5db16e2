"""The config commands' and client setup's own words in Chinese under a zh_CN locale (real CLI runs): their
usage errors, `config diff`'s labels, the comments they write, a mistyped env value; --json stays English."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import Env, tiny_server

CHINESE = {"LANG": "zh_CN.UTF-8"}


def zh(env: Env, monkeypatch: pytest.MonkeyPatch, *args: str, expect: int = 0) -> str:
    with monkeypatch.context() as patch:
        patch.setenv("LANG", "zh_CN.UTF-8")
        proc = env.run(*args)
    assert proc.returncode == expect, (args, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def test_config_and_init_usage_errors_are_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"t": tiny_server()})
    (env.workdir / "a.txt").write_text("{}")
    said = zh(env, monkeypatch, "init", "--from", "a.txt", "new.toml", expect=2)
    assert said.startswith("错误：--from a.txt：应为客户端的 JSON 配置（*.json）\n提示：例如 claude_desktop"), said
    said = zh(env, monkeypatch, "init", "--from", "gone.json", "new.toml", expect=2)
    assert said.startswith("错误：--from gone.json：没有这个文件\n提示：请给出客户端 JSON 配置的路径，例如 "), said
    said = zh(env, monkeypatch, "-f", "c.json", "config", "import", str(env.config), expect=2)
    assert said == (
        "错误：c.json 是 JSON 文件：mcpctl 以 TOML 写入配置\n"
        "提示：请把它导入 TOML 配置：mcpctl -f mcpctl.toml config import c.json\n"
    )
    with monkeypatch.context() as patch:  # what a script reads stays English
        patch.setenv("LANG", "zh_CN.UTF-8")
        error = env.json("-f", "c.json", "config", "import", str(env.config), "--json", expect=2)["error"]
    assert error["message"] == "c.json is a JSON file: mcpctl writes its config as TOML"


def test_a_mistyped_env_value_is_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.config.write_text('[servers.a]\ncommand = "x"\nenv = { PIN = 4711, FLAG = true }\nheaders = 3\n')
    said = zh(env, monkeypatch, "config", "validate", expect=2)
    assert f"错误：{env.config}：servers.a.env.PIN：应为字符串（请给值加上引号），实际为数字\n" in said, said
    assert f"错误：{env.config}：servers.a.env.FLAG：应为字符串（请给值加上引号），实际为布尔值\n" in said, said
    assert f'错误：{env.config}：servers.a.headers：应为 NAME = "value" 形式的表，实际为 3\n' in said, said
    assert "4711" not in said


def test_diff_labels_export_and_init_from_comment_are_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write_config({"t": tiny_server()})
    assert env.run("apply", "-m", "first").returncode == 0
    env.write_config({"t": tiny_server(), "u": tiny_server()})
    diff = zh(env, monkeypatch, "config", "diff")
    labels = r"--- 版本 1（[-0-9: ]+，由 \S+ 记录：“first”）\n\+\+\+ 文件 "
    assert re.match(labels + re.escape(str(env.config)), diff), diff
    english = env.json("config", "diff", "--json")
    assert english["from"].startswith("version 1 (")
    assert english["to"] == f"file {env.config}"
    out = env.workdir / "out.toml"
    assert zh(env, monkeypatch, "config", "export", "-o", str(out)) == f"已写入 {out}\n"
    client = env.workdir / "client.json"
    client.write_text(json.dumps({"mcpServers": {"c": {"command": "echo"}}}))
    target = env.workdir / "fresh" / "mcpctl.toml"
    target.parent.mkdir()
    zh(env, monkeypatch, "init", "--from", str(client), str(target))
    assert target.read_text().startswith(f"# 由 `mcpctl init --from` 从 {client} 转换而来；"), target.read_text()


def _cursor_file(env: Env, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Cursor's user file, with one server, under a HOME of the test's own."""
    home = env.workdir.parent / "u"
    cursor = home / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(json.dumps({"mcpServers": {"a": {"command": "echo"}}}))
    monkeypatch.setenv("HOME", str(home))
    return cursor


def test_client_setup_refusals_are_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    cursor = _cursor_file(env, monkeypatch)
    said = zh(env, monkeypatch, "-f", str(env.config), "client", "setup", "cursor", "--servers", "zz", expect=2)
    assert said == "错误：Cursor 没有服务器 'zz'\n提示：它的服务器：a\n", said
    zh(env, monkeypatch, "-f", str(env.config), "client", "setup", "cursor")  # a new config: its first line
    assert env.config.read_text().startswith("# mcpctl.toml：mcpctl 运行的 MCP 服务器"), env.config.read_text()
    cursor.write_text("{nope")
    said = zh(env, monkeypatch, "-f", str(env.config), "client", "setup", "cursor", expect=2)
    assert said.startswith(f"错误：{cursor}：无法解析："), said
    assert said.endswith("提示：请修正该文件（或把它移开），然后重新运行 setup\n"), said


def test_an_unreadable_backup_is_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _cursor_file(env, monkeypatch)
    assert env.run("-f", str(env.config), "client", "setup", "cursor").returncode == 0
    (copy,) = (p for p in (env.home / "clients" / "backups").rglob("*") if p.is_file() and p.name != "manifest.json")
    copy.unlink()
    said = zh(env, monkeypatch, "client", "restore", "cursor", expect=2)
    assert re.match(r"错误：备份 \S+：无法读取：.+\n提示：请用 --backup 选择另一个\n\Z", said), said


def test_a_refused_file_is_said_in_chinese_part_by_part(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trust rules' refusals (config/trust.py): the file, why, and the way out, each part translated; the
    paths stay as they are, and the English stays what it was."""
    config = env.write_config({"t": {**tiny_server(), "env_file": ["e.env"]}})
    env_file = env.workdir / "e.env"
    env_file.write_text("A=1\n")
    cases = [
        (
            config,
            0o620,
            f"拒绝使用配置文件 {config}：其所属组可以写入它（模式 0o620）",
            f"运行 `chmod g-w {config}`，或显式传入 -f {config}",
        ),
        (
            env_file,
            0o666,
            f"拒绝使用服务器 't' 的 env_file {env_file}：其所属组和其他用户可以写入它（模式 0o666）",
            f"运行 `chmod go-w {env_file}`，或如果你信任能写入它的人，请传入 --trust",
        ),
    ]
    for path, mode, error, hint in cases:
        path.chmod(mode)
        said = zh(env, monkeypatch, "list", expect=2)
        assert said == f"错误：{error}\n提示：{hint}\n", said
        path.chmod(0o600)
    config.chmod(0o620)
    english = env.run("list")
    assert english.stderr == (
        f"error: refusing the config file {config}: its group can write to it (mode 0o620)\n"
        f"hint: run `chmod g-w {config}`, or pass -f {config} explicitly\n"
    ), english.stderr


def test_a_rollback_missing_its_secrets_is_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The version's secret is in neither the current file nor a backup: the refusal was English under zh_CN."""
    env.write_config({"t": tiny_server(env={"API_KEY": "sk-q7zVerySecret123456"})})
    env.run("apply")
    env.write_config({"t": tiny_server()})
    said = zh(env, monkeypatch, "config", "rollback", "1", expect=2)
    assert said == (
        f"错误：这些值从未被保存（密钥），也不在 {env.config} 或其备份中：servers.t.env.API_KEY\n"
        "提示：传入 --placeholders 为这些 env 值写入 ${VAR} 引用，或手动恢复它们\n"
    ), said
    with monkeypatch.context() as patch:  # what a script reads stays English
        patch.setenv("LANG", "zh_CN.UTF-8")
        error = env.json("config", "rollback", "1", expect=2)["error"]
    assert error["message"].startswith("values never stored (secrets) and not in "), error
    assert "sk-q7z" not in said + json.dumps(error)


def test_client_setups_notes_and_what_it_leaves_are_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why setup left an entry, and its notes, were English under zh_CN; the names (`failed`, a msgid), keys and
    paths stay as they are, and --json's reasons and notes stay English."""
    cursor = _cursor_file(env, monkeypatch)
    entries = {
        "failed": {"command": "echo", "autoApprove": ["x"]},
        "off": {"command": "echo", "disabled": True},
        "t": {"command": "echo", "args": ["other"]},
    }
    cursor.write_text(json.dumps({"mcpServers": entries}))
    env.write_config({"t": tiny_server()})
    said = zh(env, monkeypatch, "-f", str(env.config), "client", "setup", "cursor", "--dry-run")
    assert "注意：failed：已略去 'autoApprove'（mcpctl 不使用它）\n" in said, said
    assert "注意：off（~/.cursor/mcp.json）：在客户端中已禁用：未导入\n" in said, said
    assert f"注意：t（{cursor}）：mcpctl 配置中已有另一个设置不同的服务器 't'；已以 't-2' 导入\n" in said, said
    assert "not imported" not in said, said
    assert "left out" not in said, said
    zh(env, monkeypatch, "-f", str(env.config), "client", "setup", "cursor")
    said = zh(env, monkeypatch, "-f", str(env.config), "client", "setup", "cursor", "--dry-run")
    assert "注意：failed（~/.cursor/mcp.json）：已经通过 mcpctl 运行\n" in said, said
    with monkeypatch.context() as patch:  # what a script reads stays English
        patch.setenv("LANG", "zh_CN.UTF-8")
        plan = env.json("-f", str(env.config), "client", "setup", "cursor", "--dry-run")
    assert "already runs through mcpctl" in [x["reason"] for x in plan["left"]], plan


def test_a_refused_client_file_is_noted_in_chinese(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """`client list`'s note for a client file the trust rules refused, unread (a FIFO would be read for ever)."""
    monkeypatch.setenv("HOME", str(env.home.parent))
    (env.workdir / ".cursor").mkdir()
    fifo = env.workdir / ".cursor" / "mcp.json"
    os.mkfifo(fifo)
    said = zh(env, monkeypatch, "client", "list")
    note = f"注意：拒绝使用客户端配置文件 {fifo}：它不是普通文件；未读取该文件\n"
    assert note + "提示：请把它移开：客户端读取的是普通文件\n" in said, said
