"""The gateway's record (gateway/state.json) and events, and the lock that says it runs."""

from __future__ import annotations

import contextlib
import json
import os
import time

from mcpctl.events import append_event
from mcpctl.hints import Any
from mcpctl.paths import Paths
from mcpctl.privdir import read_own
from mcpctl.state import lock_holder, write_atomic

RECORD = "state.json"
LOCK = "instance.lock"
EVENTS = "events.jsonl"
LOG = "gateway.log"


def read(paths: Paths) -> dict[str, Any]:
    """The record as written; {} when there is none or it is unreadable."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(read_own(paths.gateway_file(RECORD)))
        return data if isinstance(data, dict) else {}
    return {}


def write(paths: Paths, **fields: Any) -> None:
    data = {**read(paths), **fields, "updated_at": time.time(), "pid": os.getpid()}
    write_atomic(paths.gateway_file(RECORD), json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


def event(paths: Paths, kind: str, **details: Any) -> None:
    append_event(paths.gateway_file(EVENTS), kind, details)


def holder(paths: Paths) -> int | None:
    """The gateway's pid while one runs (it holds the lock), asked of the kernel."""
    return lock_holder(paths.gateway_file(LOCK))


def observed(paths: Paths) -> dict[str, Any]:
    """The record reconciled with the kernel: `running` and `state` say what is true now."""
    record = read(paths)
    pid = holder(paths)
    state = record.get("state", "stopped") if pid is not None else "stopped"
    return {**record, "running": pid is not None, "pid": pid, "state": state}
