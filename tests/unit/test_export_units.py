"""Pure parts of issue 21: the notify socket's address and watchdog, the wish fallback, what a server needs."""

from __future__ import annotations

import os
from pathlib import Path

from mcpctl.config.model import Config, ServerConfig
from mcpctl.control import wishes
from mcpctl.control.wishes import Wish
from mcpctl.export.needs import dns_name, needs_of
from mcpctl.paths import Paths
from mcpctl.shim.notify import Notifier
from mcpctl.state import StateRecord, write_record
from mcpctl.states import ServerState


def test_notify_address_and_watchdog_interval() -> None:
    assert Notifier({}).send(READY="1") is False  # outside systemd: nothing to do
    assert Notifier({"NOTIFY_SOCKET": "@abc"}).address == b"\0abc"
    assert Notifier({"NOTIFY_SOCKET": "/run/x"}).address == "/run/x"
    assert Notifier({"NOTIFY_SOCKET": "relative"}).address is None
    assert Notifier({"WATCHDOG_USEC": "3000000"}).watchdog_interval == 1.5
    assert Notifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 1.5
    assert Notifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "nope"}).watchdog_interval is None


def test_a_wish_is_kept_and_an_old_state_dir_falls_back_to_its_record(tmp_path: Path) -> None:
    paths = Paths(tmp_path)
    wishes.record(paths, ["never-started"], Wish.STOPPED)
    assert not paths.server_dir("never-started").exists()  # a stop makes no folder for a stranger
    wishes.record(paths, ["a"], Wish.RUNNING)
    assert wishes.wanted(paths, "a") == Wish.RUNNING
    wishes.record(paths, ["a"], Wish.STOPPED)
    assert wishes.wanted(paths, "a") == Wish.STOPPED
    for name, state in (("live", "ready"), ("done", "stopped"), ("gave-up", "failed")):
        paths.ensure_server(name)
        write_record(paths.state_file(name), StateRecord(name, ServerState(state)))
    assert wishes.resumable(paths, ["a", "live", "done", "gave-up", "unknown"]) == ["live"]
    (paths.server_dir("a") / wishes.WANTED_FILE).write_text('{"wanted": "maybe"}')
    assert wishes.wanted(paths, "a") == Wish.STOPPED  # unreadable: start nothing


def test_needs_names_what_must_come_from_outside(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("IN_FILE=x\n")
    server = ServerConfig(
        name="s",
        command="srv",
        args=("--key", "${KEY}", "${OPTIONAL:-d}", "${IN_FILE}", "${LOCAL}"),
        env={"LOCAL": "v", "TOKEN": "${TOKEN}"},
        env_file=("a.env",),
        url="http://127.0.0.1:9000/mcp",
    )
    needs = needs_of(Config(tmp_path / "mcpctl.toml", {"s": server}), server, ["REQUIRED"])
    assert needs.variables == ("REQUIRED", "TOKEN", "KEY")
    assert needs.env_files == ((tmp_path / "a.env").absolute(),)
    assert needs.port == 9000
    assert dns_name("ok-name") == "ok-name"
    assert dns_name("Web.Srv_1").startswith("web-srv-1-")
    assert dns_name("Web.Srv_1") != dns_name("web-srv-1")
