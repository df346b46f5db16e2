"""The restart policy's arithmetic and decisions, as pure functions (the shim's behaviour is in test_failures)."""

from __future__ import annotations

import pytest

from mcpctl.clock import jitter
from mcpctl.errors import KINDS, ErrorType, Failure
from mcpctl.shim.policy import after_exit, backoff_delay, cooldown
from mcpctl.states import ServerState


def test_backoff_grows_exponentially_and_is_capped() -> None:
    no_jitter = [backoff_delay(n, base=1.0, cap=60.0, rand=lambda: 0.0) for n in range(1, 9)]
    assert no_jitter == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_jitter_adds_at_most_ten_percent() -> None:
    assert backoff_delay(3, base=1.0, cap=60.0, rand=lambda: 1.0) == pytest.approx(4.4)
    assert backoff_delay(20, base=1.0, cap=60.0, rand=lambda: 1.0) == pytest.approx(66.0)


def test_the_default_jitter_is_uniform_on_zero_to_one() -> None:
    draws = [jitter() for _ in range(4000)]
    assert all(0.0 <= x < 1.0 for x in draws)
    assert len(set(draws)) == len(draws)  # 56 random bits a draw
    assert 0.45 < sum(draws) / len(draws) < 0.55
    assert 0.2 < sum(x < 0.25 for x in draws) / len(draws) < 0.3
    delays = {backoff_delay(3, base=1.0, cap=60.0) for _ in range(50)}
    assert len(delays) > 1
    assert all(4.0 <= d <= 4.4 for d in delays)


def test_manual_start_cooldown_follows_base_times_two_to_the_failures() -> None:
    assert [cooldown(n, 60.0, 3600.0) for n in (1, 3, 5, 7, 9)] == [60.0, 240.0, 960.0, 3600.0, 3600.0]


@pytest.mark.parametrize(
    ("policy", "failed", "retryable", "failures", "expected"),
    [
        ("on-failure", False, True, 0, (False, "stopped", False)),  # exit 0 after ready: done
        ("always", False, True, 0, (True, "backoff", False)),  # exit 0 after ready: again
        ("never", True, True, 1, (False, "failed", False)),
        ("on-failure", True, True, 1, (True, "backoff", False)),
        ("on-failure", True, True, 5, (False, "failed", True)),  # max_failures reached: crash loop
        ("always", True, True, 5, (False, "failed", True)),
        ("on-failure", True, False, 1, (False, "failed", False)),  # command not found: no point retrying
    ],
)
def test_after_exit_decisions(
    policy: str, failed: bool, retryable: bool, failures: int, expected: tuple[bool, str, bool]
) -> None:
    decision = after_exit(policy, failed, retryable, failures, max_failures=5)
    assert (decision.restart, decision.final, decision.crash_loop) == expected
    assert decision.final != (ServerState.STOPPED if failed else ServerState.FAILED)  # a failure never ends clean


def test_every_error_type_has_a_message_hint_flag_and_exit_code() -> None:
    assert set(KINDS) == set(ErrorType)
    required = {
        "config_invalid", "unknown_server", "env_missing", "command_not_found", "permission_denied", "spawn_failed",
        "exited_during_startup", "handshake_timeout", "protocol_error", "crashed", "unhealthy", "cooldown",
        "not_running", "lock_timeout", "connection_lost", "tool_error", "timeout",
        "internal",
    }  # fmt: skip
    assert required <= {kind.value for kind in ErrorType}
    failure = Failure.of(ErrorType.COOLDOWN, name="demo", failures=3, left="41s", detail="cooling down")
    assert failure.message == "demo is cooling down after 3 failure(s); next try in 41s"
    assert failure.hint == "use --force to start now"
    assert failure.to_json() == {
        "type": "cooldown",
        "message": failure.message,
        "hint": failure.hint,
        "retryable": True,
    }
    assert int(failure.exit_code) == 5


def test_delays_after_a_million_failures_are_the_cap_not_an_overflow() -> None:
    # 2 ** (n-1) as an int multiplied into a float overflowed from the 1,025th failure in a row.
    assert backoff_delay(10**6, base=0.001, cap=0.002, rand=lambda: 0.0) == 0.002
    assert backoff_delay(10**6, base=1.0, cap=60.0, rand=lambda: 1.0) == pytest.approx(66.0)
    assert cooldown(10**6, 60.0, 3600.0) == 3600.0
    assert cooldown(1025, 1e300, 1e308) == 1e308  # a product past the float range is the cap
