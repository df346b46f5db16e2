"""The clock every timer reads, passed in so that unit tests drive timers without waiting for them.

`monotonic()` decides (timers, deadlines, backoff); `time()` is the wall time people read in records and
events; `sleep()` is how the CLI waits between looks (the shim never sleeps: its selector waits).
"""

from __future__ import annotations

import os
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


def jitter() -> float:
    """A number in [0, 1) to spread retries and restarts apart, from the kernel's random bytes: `random`
    costs ~2 ms and ~0.3 MB to import, for a number needed only after a failure."""
    return int.from_bytes(os.urandom(7)) / 2**56
