"""control.shim_client.with_retries: transient failures are tried again, with backoff and jitter, within
the count and the deadline; any other failure is raised at once."""

from __future__ import annotations

import time

import pytest

from mcpctl.control.shim_client import RETRY_BASE, with_retries


class Flaky:
    """Refuses `failures` times (as a shim's socket does while it restarts), then answers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.left, self.calls = failures, 0
        self.error = error or ConnectionRefusedError("refused")

    def __call__(self) -> str:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise self.error
        return "answer"


def test_transient_failures_are_tried_again_with_growing_jittered_waits() -> None:
    seen: list[tuple[int, float]] = []
    flaky = Flaky(2)
    began = time.monotonic()
    result = with_retries(flaky, 3, time.monotonic() + 30, lambda _exc, n, delay: seen.append((n, delay)))
    assert (result, flaky.calls) == ("answer", 3)
    assert [n for n, _ in seen] == [1, 2]
    for n, delay in seen:
        assert RETRY_BASE * 2 ** (n - 1) <= delay <= RETRY_BASE * 2 ** (n - 1) * 1.25
    assert time.monotonic() - began >= sum(delay for _, delay in seen)


def test_the_count_of_retries_is_kept() -> None:
    flaky = Flaky(5)
    with pytest.raises(ConnectionRefusedError):
        with_retries(flaky, 1, time.monotonic() + 30)
    assert flaky.calls == 2


def test_a_failure_that_is_not_transient_is_raised_at_once() -> None:
    flaky = Flaky(1, ValueError("bad arguments"))
    with pytest.raises(ValueError, match="bad arguments"):
        with_retries(flaky, 3, time.monotonic() + 30)
    assert flaky.calls == 1


def test_no_wait_goes_past_the_deadline() -> None:
    flaky = Flaky(5)
    with pytest.raises(ConnectionRefusedError):
        with_retries(flaky, 10, time.monotonic() + RETRY_BASE / 2)  # the first wait would end after it
    assert flaky.calls == 1
