"""What the shim watches while a server is ready: pings, resource samples and alert rules.

The monitor only observes and reports; what the observations mean for the server's lifecycle
(unhealthy, restart, events) is decided by the shim.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpctl import metrics
from mcpctl.alerts import Change, Evaluator
from mcpctl.health import Health, Pinger
from mcpctl.metrics import Sample, Sampler
from mcpctl.shim.log import log


@dataclass(frozen=True)
class Findings:
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
    ) -> None:
        """`requests` gives the client requests answered since its last call, and how many were errors."""
        self.sampler = sampler
        self.evaluator = evaluator
        self.metrics_path = metrics_path
        self.metrics_interval = metrics_interval
        self.pinger = pinger
        self.requests = requests
        self.next_sample = time.monotonic()  # a first sample at once, then every metrics_interval
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
        if time.monotonic() < self.next_sample:
            return None
        self.next_sample = time.monotonic() + self.metrics_interval
        pinger = self.pinger
        latency = pinger.last.latency_ms if pinger and pinger.last else None
        pings = pinger.take_counts() if pinger else (0, 0)
        requests = self.requests() if self.requests else (0, 0)
        decided, failed = pings[0] + requests[0], pings[1] + requests[1]
        sample = self.sampler.sample(latency, round(failed / decided, 3) if decided else None)
        metrics.append(self.metrics_path, sample)
        new_zombies = tuple(pid for pid in sample.zombies if pid not in self.zombies)
        self.zombies = sample.zombies
        values = {
            "cpu_percent": sample.cpu_percent,
            "rss_mb": sample.rss_bytes / 1024 / 1024,
            "ping_latency_ms": sample.ping_latency_ms,
            "error_rate": sample.error_rate,
            "restarts_per_hour": restarts_per_hour,
            "state": state,
        }
        return Findings(sample, self.evaluator.evaluate(values), new_zombies)

    def retune(self, evaluator: Evaluator, metrics_interval: float, ping_interval: float, ping_timeout: float) -> None:
        """New settings (from `mcpctl apply`), in effect from the next sample and the next ping."""
        now = time.monotonic()
        self.evaluator = evaluator
        self.metrics_interval = metrics_interval
        self.next_sample = min(self.next_sample, now + metrics_interval)
        if self.pinger is not None:
            self.pinger.interval, self.pinger.timeout = ping_interval, ping_timeout
            self.pinger.next_at = min(self.pinger.next_at, now + ping_interval)

    def next_wakeup(self) -> float:
        later = self.next_sample
        return min(later, self.pinger.next_wakeup()) if self.pinger is not None else later


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


def restarts_within(times: list[float], window: float = 3600.0) -> list[float]:
    now = time.monotonic()
    return [t for t in times if now - t < window]
