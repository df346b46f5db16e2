"""What the shim watches: pings, resource samples and alert rules while a server is ready.

A Monitor watches one ready run; the Watch keeps what outlives a run (alert episodes, but for those of
ping latency and error rate, which a new run ends; the sampler; the restarts of the last hour). They
observe and tell (log lines, events, alert commands); what the observations mean for the server's
lifecycle (unhealthy, restart) is decided by the shim.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from mcpctl import alerts, metrics
from mcpctl.alerts import Change, Evaluator
from mcpctl.clock import jitter
from mcpctl.contract import Spec
from mcpctl.errors import ErrorType, Failure
from mcpctl.health import Health, Pinger
from mcpctl.hints import Any
from mcpctl.lean import Record, dataclass
from mcpctl.metrics import Sample, Sampler
from mcpctl.shim.log import log

_first_sample_within = [0.0]  # seconds after ready, at the latest, for the first sample: see Monitor


def spread_first_samples(within: float = 2.0) -> None:
    """For the shims of a brood (servers started together): each takes its first sample 0.5-1 times
    `within` after ready, not at once, and so never in step with the others (see Monitor)."""
    _first_sample_within[0] = within


@dataclass(frozen=True)
class Findings(Record):
    """One resource sample, the alerts it changed, and zombies that were not there before."""

    sample: Sample
    changes: list[Change]
    new_zombies: tuple[int, ...]


class Monitor:
    def __init__(
        self,
        sampler: Sampler,
        evaluator: Evaluator,
        metrics_path: Path,
        metrics_interval: float,
        pinger: Pinger | None,
        requests: Callable[[], tuple[int, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`requests` gives the client requests answered since its last call, and how many were errors;
        `clock` is the monotonic clock."""
        self.clock = clock
        self.sampler = sampler
        self.evaluator = evaluator
        self.metrics_path = metrics_path
        self.metrics_interval = metrics_interval
        self.pinger = pinger
        self.requests = requests
        # The first sample at once (status right after a start shows it), then every metrics_interval. In
        # a brood, 0.5-1 times a couple of seconds after ready (sooner for a short interval): not in the
        # way of the servers still starting beside it (a sample reads every /proc/PID/stat where the
        # kernel lists no children), and fifty shims started together never sample together after.
        first = min(metrics_interval, _first_sample_within[0]) * (0.5 + jitter() / 2)
        self.next_sample = clock() + first
        self.answered: Health | None = None  # a ping answer read from stdout, not yet taken
        self.zombies: tuple[int, ...] = ()

    def on_response(self, message: dict[str, Any]) -> None:
        if self.pinger is not None:
            self.answered = self.pinger.answer(message) or self.answered

    def health(self) -> Health | None:
        """A ping that was just decided (answered, failed or timed out), if any."""
        health, self.answered = self.answered, None
        if health is None and self.pinger is not None:
            health = self.pinger.tick()
        return health

    def findings(self, restarts_per_hour: float, state: str) -> Findings | None:
        """Sample the tree and evaluate the alert rules, when a sample is due."""
        now = self.clock()
        if now < self.next_sample:
            return None
        self.next_sample = now + self.metrics_interval
        pinger = self.pinger
        latency = pinger.last.latency_ms if pinger and pinger.last else None
        pings = pinger.take_counts() if pinger else (0, 0)
        requests = self.requests() if self.requests else (0, 0)
        decided, failed = pings[0] + requests[0], pings[1] + requests[1]  # the rules take a window of them
        sample = self.sampler.sample(latency, round(failed / decided, 3) if decided else None)
        metrics.append(self.metrics_path, sample)
        new_zombies = tuple(pid for pid in sample.zombies if pid not in self.zombies)
        self.zombies = sample.zombies
        values = {
            "cpu_percent": sample.cpu_percent,
            "memory_mb": sample.memory_bytes / 1024 / 1024,
            "rss_mb": sample.rss_bytes / 1024 / 1024,
            "ping_latency_ms": sample.ping_latency_ms,
            "restarts_per_hour": restarts_per_hour,
            "state": state,
        }
        return Findings(sample, self.evaluator.evaluate(values, (decided, failed)), new_zombies)

    def retune(self, evaluator: Evaluator, metrics_interval: float, ping_interval: float, ping_timeout: float) -> None:
        """New settings (from `mcpctl apply`), in effect from the next sample and the next ping."""
        now = self.clock()
        self.evaluator = evaluator
        self.metrics_interval = metrics_interval
        self.next_sample = min(self.next_sample, now + metrics_interval)
        if self.pinger is not None:
            self.pinger.interval, self.pinger.timeout = ping_interval, ping_timeout
            self.pinger.next_at = min(self.pinger.next_at, now + ping_interval)

    def next_wakeup(self) -> float:
        later = self.next_sample
        return min(later, self.pinger.next_wakeup()) if self.pinger is not None else later


class Watch:
    """What the shim watches across runs, and a Monitor while a run is ready."""

    def __init__(
        self, spec: Spec, metrics_path: Path, requests: Callable[[], tuple[int, int]], clock: Callable[[], float]
    ) -> None:
        """`requests`: client requests answered, and failed, since its last call; `clock`: monotonic."""
        self.metrics_path, self.requests, self.clock = metrics_path, requests, clock
        self.evaluator = Evaluator(_alert_rules(spec), clock)
        self.sampler: Sampler | None = None
        self.monitor: Monitor | None = None
        self.restart_times: list[float] = []  # monotonic, for restarts_per_hour

    def restarted(self) -> None:
        now = self.clock()
        self.restart_times = [*restarts_within(self.restart_times, now), now]

    def begin(self, spec: Spec, send: Callable[[dict[str, Any]], None] | None) -> None:
        """A run is ready: sample it, and ping it through `send` (None: it speaks no MCP)."""
        pinger = Pinger(send, spec.health_interval, spec.health_timeout, self.clock) if send else None
        self.sampler = self.sampler or metrics.new_sampler()  # /proc on Linux, else psutil (imported now)
        self.evaluator.new_run()
        self.monitor = Monitor(
            self.sampler, self.evaluator, self.metrics_path, spec.metrics_interval, pinger, self.requests, self.clock
        )

    def end(self) -> None:
        self.monitor = None

    def on_response(self, message: dict[str, Any]) -> None:
        if self.monitor is not None:
            self.monitor.on_response(message)

    def health(self) -> Health | None:
        return self.monitor.health() if self.monitor is not None else None

    def findings(self, state: str) -> Findings | None:
        """A due sample's findings (asked every turn of the shim's loop: nothing is computed until one is due)."""
        now = self.clock()
        if self.monitor is None or now < self.monitor.next_sample:
            return None
        return self.monitor.findings(float(len(restarts_within(self.restart_times, now))), state)

    def retune(self, spec: Spec) -> None:
        self.evaluator = self.evaluator.with_rules(_alert_rules(spec))
        if self.monitor is not None:
            self.monitor.retune(self.evaluator, spec.metrics_interval, spec.health_interval, spec.health_timeout)

    def next_wakeup(self, later: float) -> float:
        return min(later, self.monitor.next_wakeup()) if self.monitor is not None else later


def _alert_rules(spec: Spec) -> list[alerts.AlertRule]:
    return alerts.rules(spec.alerts) or alerts.defaults(spec.health_interval)


def announce(found: Findings, name: str, event: Callable[[str, dict[str, Any]], None]) -> Failure | None:
    """Log and journal what a sample found (new zombies, alerts fired or resolved) and run the alerts'
    commands; a Failure when a firing alert's actions include restart."""
    if found.new_zombies:
        log(f"zombie processes in the tree: {', '.join(map(str, found.new_zombies))}")
        event("zombie", {"pids": list(found.new_zombies)})
    restart: Failure | None = None
    for change in found.changes:
        rule, kind = change.rule, "alert_fired" if change.fired else "alert_resolved"
        log(f"alert {'fired' if change.fired else 'resolved'} ({rule.severity}): {change.message}")
        details = {"alert": rule.name, "severity": rule.severity, "message": change.message}
        event(kind, details)
        if rule.exec:
            run_alert_command(rule.exec, {"server": name, "event": kind, **details})
        if change.fired and "restart" in rule.actions:
            restart = Failure.of(ErrorType.UNHEALTHY, name=name, detail=f"alert {change.message}")
    return restart


def run_alert_command(command: tuple[str, ...], details: dict[str, str]) -> None:
    """Run an alert's `exec` command with the alert in its environment and as JSON on stdin.

    Never waited for: the shim's reaper collects it like every other child.
    """
    import subprocess

    env = {**os.environ, **{f"MCPCTL_ALERT_{key.upper()}": value for key, value in details.items()}}
    try:
        proc = subprocess.Popen(list(command), stdin=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as exc:
        log(f"alert action {command[0]!r} failed to start: {exc.strerror}")
        return
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.write(json.dumps(details).encode())
    with contextlib.suppress(OSError):
        proc.stdin.close()
    proc.returncode = 0  # reaped by the shim; keep Popen from waiting for it


def restarts_within(times: list[float], now: float, window: float = 3600.0) -> list[float]:
    return [t for t in times if now - t < window]
