"""The lifecycle journal: servers/NAME/events.jsonl, one JSON object per line, bounded in size."""

from __future__ import annotations

import time
from pathlib import Path

from mcpctl import jsonl
from mcpctl.hints import Any
from mcpctl.logfile import stamp

MAX_EVENTS_BYTES = 1024 * 1024  # past this the file moves to events.jsonl.1 (one generation kept)


def append_event(path: Path, kind: str, details: dict[str, Any]) -> bool:
    """Append one event (False if it could not be written). Only the server's shim writes here; a failed
    write never stops supervision."""
    now = time.time()
    entry = {"time": stamp(now), "ts": round(now, 3), "mono": round(time.monotonic(), 3), "event": kind}
    entry.update({key: value for key, value in details.items() if value is not None})
    return jsonl.append(path, entry, MAX_EVENTS_BYTES)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every readable event, oldest first (a damaged line is skipped, not fatal)."""
    return jsonl.read(path)
