"""The lifecycle journal: servers/NAME/events.jsonl, one JSON object per line, bounded in size."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

MAX_EVENTS_BYTES = 1024 * 1024  # past this the file moves to events.jsonl.1 (one generation kept)


def append_event(path: Path, kind: str, details: dict[str, Any]) -> None:
    """Append one event. Only the server's shim writes here; a failed write never stops supervision."""
    now = time.time()
    entry = {"time": _iso(now), "ts": round(now, 3), "mono": round(time.monotonic(), 3), "event": kind}
    entry.update({key: value for key, value in details.items() if value is not None})
    line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
    try:
        if path.exists() and path.stat().st_size + len(line) > MAX_EVENTS_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        pass


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every readable event, oldest first (a damaged line is skipped, not fatal)."""
    events = []
    for candidate in (path.with_name(path.name + ".1"), path):
        try:
            lines = candidate.read_bytes().splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z"
