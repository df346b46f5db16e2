"""The controller's clock, passed in so unit tests can drive its waits without waiting."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """What the controller reads time from and sleeps on."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
