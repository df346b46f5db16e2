"""`mcpctl forget`: remove what the state dir keeps of servers that do not run (record, events, metrics, logs)."""

from __future__ import annotations

import contextlib
import shutil

from mcpctl.control.controller import Controller
from mcpctl.errors import ErrorType, MCPCtlError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass

# Why a server is not forgotten (English: --json carries it); KNOWN lets the CLI show it translated.
IS_STATE, LEFT_RUNNING = N_("is {state} (shim pid {pid})"), N_("has a server process left running (pid {pid})")
KNOWN = (IS_STATE, LEFT_RUNNING)


@dataclass(frozen=True)
class Forgotten(Record):
    """What `forget` did for one server: `removed` files and directories, or why it kept them."""

    name: str
    removed: tuple[str, ...]
    kept_because: str | None = None  # it runs: only with --all-stopped, which skips it


def forget(ctl: Controller, names: list[str], skip_running: bool, prefix: str = "") -> list[Forgotten]:
    """Under the state lock (so no start can launch a shim meanwhile): refuse, or skip, a running server,
    and remove the rest. Nothing is removed when one named server runs and `skip_running` is False."""
    with ctl.locked():
        busy = {name: why for name in names if (why := _running(ctl, name))}
        if busy and not skip_running:
            name, why = next(iter(busy.items()))
            raise MCPCtlError.of(ErrorType.SERVER_RUNNING, name=prefix + name, detail=why)  # PROJECT/NAME if named so
        return [Forgotten(name, (), busy[name]) if name in busy else _remove(ctl, name) for name in names]


def _running(ctl: Controller, name: str) -> str | None:
    obs = ctl.observe(name)
    if obs.shim_pid is not None:
        return IS_STATE.format(state=obs.state, pid=obs.shim_pid)
    if obs.pid is not None:
        return LEFT_RUNNING.format(pid=obs.pid)
    return None


def _remove(ctl: Controller, name: str) -> Forgotten:
    paths = ctl.paths
    candidates = [paths.server_dir(name), *paths.log_files(name), paths.socket(name), paths.control_socket(name)]
    removed = []
    for path in candidates:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            continue
        removed.append(str(path))
    return Forgotten(name, tuple(removed))
