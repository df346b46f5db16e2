"""How much of a server's log or events `mcpctl logs`/`events` and `Manager.logs`/`events` show, one rule
for both: the last N (default 20 lines, 50 events); since T, the last N of those since T (all of them when
no N is given)."""

from __future__ import annotations

from typing import TypeVar

LOG_LINES, EVENT_LINES = 20, 50
T = TypeVar("T")


def count(lines: int | None, since: float | None, default: int) -> int | None:
    """How many of the last to show (None: all): `lines`, else all since `since`, else `default`."""
    if lines is not None:
        return lines
    return None if since is not None else default


def last(items: list[T], wanted: int | None) -> list[T]:
    """The last `wanted` items (None: all), all of them when there are fewer (a negative start would cut
    from the front)."""
    return items if wanted is None else items[max(len(items) - wanted, 0) :]
