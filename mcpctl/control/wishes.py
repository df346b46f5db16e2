"""What a person last wanted of each server, for `mcpctl resume` (after a reboot, a logout, a crash), and
for `apply`, which starts a configured server that is down though wanted running (its start failed).

`start`, `restart` and the start a `connect` makes record `running`; a person's `stop` (and `apply`
removing a server) records `stopped`. A crash, a SIGKILL or a reboot records nothing, so the wish
survives them. It lives in servers/NAME/wanted.json, beside the record: the CLI writes it (the record
is the live shim's to write), atomically, last writer wins.

A server with no wanted.json (its state dir is older than this file) counts as wanted exactly when its
record says it was live (starting, ready, unhealthy or in backoff): a shim that died without saying
`stopped` or `failed` was meant to be running.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from enum import StrEnum

from mcpctl.errors import MCPCtlError
from mcpctl.paths import Paths
from mcpctl.privdir import read_own
from mcpctl.state import CorruptState, read_record, write_all_atomic
from mcpctl.states import ServerState

WANTED_FILE = "wanted.json"
_WAS_LIVE = frozenset({ServerState.STARTING, ServerState.READY, ServerState.UNHEALTHY, ServerState.BACKOFF})


class Wish(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


def record(paths: Paths, names: Iterable[str], wish: Wish) -> None:
    """Remember `wish` for each server named (`stopped` only where the state dir knows the server).

    A wish that cannot be written must not fail the start or stop it goes with: only `resume` reads it.
    """
    data = json.dumps({"wanted": wish.value, "at": round(time.time(), 3)}).encode() + b"\n"
    files = {}
    for name in names:
        if wish == Wish.STOPPED and not paths.server_dir(name).is_dir():
            continue  # never started here: nothing to resume, and no folder to make for it
        if _said(paths, name) == wish:
            continue  # already so: `start --all` of what runs writes nothing
        with contextlib.suppress(MCPCtlError, OSError):
            paths.ensure_server(name)
            files[paths.server_dir(name) / WANTED_FILE] = data
    with contextlib.suppress(MCPCtlError):
        if files:
            write_all_atomic(files)  # durable: a reboot is when `resume` reads them


def _said(paths: Paths, name: str) -> Wish | None:
    """The wish wanted.json holds, if it holds one."""
    try:
        return Wish(json.loads(read_own(paths.server_dir(name) / WANTED_FILE))["wanted"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wanted(paths: Paths, name: str) -> Wish:
    """What was last wanted of `name` (see the module's note for a server that never said)."""
    said = _said(paths, name)
    if said is not None:
        return said
    if (paths.server_dir(name) / WANTED_FILE).exists():
        return Wish.STOPPED  # unreadable: starting nothing is the safe answer
    try:
        found = read_record(paths.state_file(name))
    except CorruptState:
        return Wish.STOPPED
    return Wish.RUNNING if found is not None and found.state in _WAS_LIVE else Wish.STOPPED


def resumable(paths: Paths, servers: Iterable[str]) -> list[str]:
    """Those of `servers` that were last wanted running."""
    return [name for name in servers if wanted(paths, name) == Wish.RUNNING]
