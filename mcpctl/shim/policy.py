"""Restart policy as pure functions: what to do after a run ends, and how long to wait before the next."""

from __future__ import annotations

from collections.abc import Callable

from mcpctl.clock import jitter
from mcpctl.constants import BACKOFF_JITTER
from mcpctl.lean import Record, dataclass
from mcpctl.states import ServerState

# 2.0 ** 1023 is the largest power of two a float holds: a larger exponent, or an int power multiplied
# into a float, overflows (supervision once stopped at the 1,025th failure in a row).
_MAX_EXPONENT = 1023


def doubled(failures: int, base: float, cap: float) -> float:
    """min(base * 2^(n-1), cap) for n = failures, for any n: the exponent is capped before the power."""
    exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
    return float(min(base * 2.0**exponent, cap))  # a product past the float range is inf, and min takes cap


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float] = jitter) -> float:
    """min(base * 2^(n-1), cap), plus up to BACKOFF_JITTER of itself, n = consecutive failures (n >= 1)."""
    delay = doubled(failures, base, cap)
    return float(min(delay * (1 + BACKOFF_JITTER * rand()), cap * (1 + BACKOFF_JITTER)))


def cooldown(loops: int, base: float, cap: float) -> float:
    """How long manual starts are skipped after crash loop n in a row: min(base * 2^(n-1), cap), so the first
    is `base` (n = consecutive failures - max_failures + 1; a failed --force start is the next loop)."""
    return doubled(loops, base, cap)


@dataclass(frozen=True)
class Decision(Record):
    """After a run ends, the shim's next state: BACKOFF (to restart), or FAILED or STOPPED (to end)."""

    final: ServerState
    crash_loop: bool = False

    @property
    def restart(self) -> bool:
        return self.final == ServerState.BACKOFF


def after_exit(policy: str, failed: bool, retryable: bool, failures: int, max_failures: int) -> Decision:
    """The one place that decides what happens when a server's run ends.

    `failed` is whether this run counts as a failure (a failed start, or a crash after ready);
    `failures` is the consecutive-failure count including this run.
    """
    if not failed:
        return Decision(ServerState.BACKOFF if policy == "always" else ServerState.STOPPED)
    if not retryable or policy == "never":
        return Decision(ServerState.FAILED)
    if failures >= max_failures:
        return Decision(ServerState.FAILED, crash_loop=True)
    return Decision(ServerState.BACKOFF)
