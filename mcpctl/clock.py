"""The clock every timer reads, passed in so that unit tests drive timers without waiting for them.

`monotonic()` decides (timers, deadlines, backoff); `time()` is the wall time people read in records and
events; `sleep()` is how the CLI waits between looks (the shim never sleeps: its selector waits).
"""

from __future__ import annotations

import time

from mcpctl.hints import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
