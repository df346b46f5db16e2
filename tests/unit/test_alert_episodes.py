"""Alert episodes with a fake clock: a sample without a metric's value is no evidence either way, and
error_rate is the share of pings and requests that failed over the rule's `for`. The replays run the
default rules at the default intervals through a Monitor and a real Pinger (nothing but the clock is fake)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mcpctl import alerts
from mcpctl.alerts import AlertRule, Change, Evaluator
from mcpctl.health import Pinger
from mcpctl.metrics import Sample, Sampler
from mcpctl.shim.monitor import Monitor
from tests.unit.fakes import FakeClock


def names(changes: list[Change]) -> list[tuple[str, bool]]:
    return [(change.rule.name, change.fired) for change in changes]


def test_samples_without_a_value_neither_end_nor_start_an_episode() -> None:
    clock = FakeClock()
    evaluator = Evaluator([AlertRule("slow", "ping_latency_ms", ">", 100, hold=30)], clock.monotonic)
    assert evaluator.evaluate({"ping_latency_ms": None}) == []  # nothing known: no episode begins
    assert evaluator.episodes == {}
    seen = []
    for latency in (150, None, None, 150, None, None, 150):  # a ping every 30 s, a sample every 10 s
        clock.advance(10)
        seen += [(clock.mono - 1000, *pair) for pair in names(evaluator.evaluate({"ping_latency_ms": latency}))]
    assert seen == [(40, "slow", True)]  # held from the first value on (t=10), the Nones in between included
    assert [a["name"] for a in evaluator.active()] == ["slow"]  # the last samples had no value: still firing


def test_a_real_value_that_does_not_hold_still_ends_the_episode() -> None:
    clock = FakeClock()
    evaluator = Evaluator([AlertRule("hot", "cpu_percent", ">", 90, hold=30)], clock.monotonic)
    for cpu in (95, None, 95):
        assert evaluator.evaluate({"cpu_percent": cpu}) == []
        clock.advance(10)
    assert names(evaluator.evaluate({"cpu_percent": 95})) == [("hot", True)]
    clock.advance(10)
    resolved = evaluator.evaluate({"cpu_percent": 10})
    assert names(resolved) == [("hot", False)]
    assert resolved[0].message == "hot resolved"
    assert evaluator.active() == []
    for cpu in (95, None, 95, 10, 95, None, 95):  # a dip to a real value starts the hold again
        clock.advance(10)
        assert evaluator.evaluate({"cpu_percent": cpu}) == []


def test_error_rate_is_the_share_failed_over_the_rules_for() -> None:
    clock = FakeClock()
    rule = AlertRule("errors", "error_rate", ">", 0.2, hold=60, actions=("log", "restart"))
    evaluator = Evaluator([rule], clock.monotonic)
    assert evaluator.evaluate({}, answers=(1, 1)) == []  # a failure, but this run was not watched for 60 s yet
    for answers in [(1, 1), (0, 0), (1, 0), (0, 0), (1, 1)]:
        clock.advance(10)
        assert evaluator.evaluate({}, answers=answers) == []
    clock.advance(10)  # watched for 60 s: 2 of the 4 answered in the last 60 s failed
    fired = evaluator.evaluate({}, answers=(1, 0))
    assert names(fired) == [("errors", True)]
    assert fired[0].message == "errors: error_rate 0.5 > 0.2 for 60s"
    for _ in range(4):  # samples without an answer are no evidence; the window still holds a failure
        clock.advance(10)
        assert evaluator.evaluate({}, answers=(0, 0)) == []
    clock.advance(10)
    assert names(evaluator.evaluate({}, answers=(4, 0))) == [("errors", False)]  # 0 of 5 in (50, 110]


def test_a_new_run_ends_the_episodes_of_what_it_observes_anew() -> None:
    clock = FakeClock()
    rules = [AlertRule("errors", "error_rate", ">", 0.2, hold=0), AlertRule("busy", "restarts_per_hour", ">", 1, 0)]
    evaluator = Evaluator(rules, clock.monotonic)
    assert names(evaluator.evaluate({"restarts_per_hour": 2.0}, answers=(1, 1))) == [("errors", True), ("busy", True)]
    evaluator.new_run()  # the pings of the server that was are no evidence about the one that starts
    assert [a["name"] for a in evaluator.active()] == ["busy"]
    clock.advance(10)
    assert names(evaluator.evaluate({"restarts_per_hour": 2.0})) == [("errors", False)]  # resolved, reported once
    clock.advance(10)
    assert names(evaluator.evaluate({"restarts_per_hour": 2.0}, answers=(1, 1))) == [("errors", True)]  # anew


class StillSampler(Sampler):
    """A tree that never changes: only the ping figures of a sample vary."""

    def __init__(self) -> None:
        pass  # no psutil, no /proc

    def sample(self, ping_latency_ms: float | None, error_rate: float | None) -> Sample:
        return Sample(time.time(), 1.0, 1 << 20, 1 << 20, "pss", 3, 1, 1, (), ping_latency_ms, error_rate)


def replay(tmp_path: Path, failing: Callable[[int], bool], minutes: float) -> list[tuple[float, str, bool]]:
    """The default rules, a ping every 30 s (5 s to answer) and a sample every 10 s, for `minutes`; ping
    number N is answered at once, with an error when failing(N). The alert changes, by seconds since ready."""
    clock, sent = FakeClock(), []
    pinger = Pinger(sent.append, interval=30, timeout=5, clock=clock.monotonic)
    evaluator = Evaluator(alerts.defaults(health_interval=30), clock.monotonic)
    monitor = Monitor(StillSampler(), evaluator, tmp_path / "metrics.jsonl", 10, pinger, clock=clock.monotonic)
    start, seen = clock.mono, []
    while clock.mono - start <= minutes * 60:
        monitor.health()
        if sent and pinger.pending is not None:
            number = len(sent)
            answer = {"error": {"code": -32603, "message": "down"}} if failing(number) else {"result": {}}
            monitor.on_response({"jsonrpc": "2.0", "id": sent[-1]["id"], **answer})
            monitor.health()
        found = monitor.findings(restarts_per_hour=0.0, state="ready")
        seen += [(clock.mono - start, c.rule.name, c.fired) for c in found.changes] if found else []
        clock.advance(1)
    return seen


def test_replay_failing_pings_fire_high_error_rate_once_its_hold_is_over(tmp_path: Path) -> None:
    seen = replay(tmp_path, failing=lambda _: True, minutes=60)
    assert [(name, fired) for _, name, fired in seen] == [("high_error_rate", True)]  # once per episode
    assert 300 <= seen[0][0] <= 320


def test_replay_every_other_ping_failing_fires_and_one_in_five_does_not(tmp_path: Path) -> None:
    half = replay(tmp_path, failing=lambda n: n % 2 == 0, minutes=15)  # never two in a row: never unhealthy
    assert [(name, fired) for _, name, fired in half] == [("high_error_rate", True)]
    assert replay(tmp_path, failing=lambda n: n % 5 == 0, minutes=30) == []  # 20 % is not more than 20 %


def test_replay_recovered_pings_resolve_the_alert(tmp_path: Path) -> None:
    seen = replay(tmp_path, failing=lambda n: n <= 12, minutes=20)  # 6 min of failing pings, then answers
    assert [(name, fired) for _, name, fired in seen] == [("high_error_rate", True), ("high_error_rate", False)]
    assert seen[1][0] - 360 <= 300  # resolved once at most 20 % of the last 5 min failed


def test_the_message_shows_the_value_as_it_was_compared() -> None:
    rule = AlertRule("errors", "error_rate", ">", 0.2, hold=300)
    assert rule.describe(0.213) == "error_rate 0.213 > 0.2 for 300s"
    assert rule.describe(0.25) == "error_rate 0.25 > 0.2 for 300s"
    assert AlertRule("big", "rss_bytes", ">", 1e6, hold=0).describe(1234567.0).startswith("rss_bytes 1234567 > ")
