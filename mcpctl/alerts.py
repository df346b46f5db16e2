"""Alert rules: a condition on a metric that must hold for a while, fired once per episode, then resolved."""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable, Mapping

from mcpctl.hints import Any
from mcpctl.lean import Record, dataclass

# memory_mb: the tree's PSS (what it costs); rss_mb: its summed RSS (shared pages counted once per process).
METRICS = ("cpu_percent", "memory_mb", "rss_mb", "ping_latency_ms", "error_rate", "restarts_per_hour", "state")
COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# What each run observes anew (its own pings and requests): its episodes end with the run (Evaluator.new_run).
PER_RUN = frozenset({"ping_latency_ms", "error_rate"})
SEVERITIES = ("info", "warning", "critical")
ACTIONS = ("log", "restart")
FIELDS = frozenset({"metric", "comparison", "threshold", "for", "severity", "actions", "exec"})


@dataclass(frozen=True)
class AlertRule(Record):
    """One configured alert: a metric compared with a threshold for a while."""

    name: str
    metric: str
    comparison: str
    threshold: float | str
    hold: float  # seconds the condition must hold ("for" in the config)
    severity: str = "warning"
    actions: tuple[str, ...] = ("log",)
    exec: tuple[str, ...] = ()

    def holds(self, value: float | str | None) -> bool:
        if value is None:
            return False
        try:
            return COMPARISONS[self.comparison](value, self.threshold)
        except TypeError:
            return False

    def describe(self, value: float | str | None) -> str:
        """What fired, with the value as the rule compared it (an error rate of 0.213 above 0.2 read
        "0.2 > 0.2" when shown to one decimal)."""
        shown = str(round(value, 3)).removesuffix(".0") if isinstance(value, float) else str(value)
        return f"{self.metric} {shown} {self.comparison} {self.threshold} for {self.hold:g}s"


def defaults(health_interval: float) -> list[AlertRule]:
    """The rules a server gets when none is configured. Memory only warns: restarting a server (a browser
    and its session) for its size hurts more than it helps; the error rate is critical and restarts."""
    return [
        AlertRule("high_cpu", "cpu_percent", ">", 90, 300, "warning"),
        AlertRule("high_memory", "memory_mb", ">", 1024, 300, "warning"),
        AlertRule("slow_response", "ping_latency_ms", ">", 2000, 3 * health_interval, "warning"),
        AlertRule("high_error_rate", "error_rate", ">", 0.2, 300, "critical", ("log", "restart")),
    ]


def problems(tables: Mapping[str, Any]) -> list[str]:
    """What is wrong with a table of [alerts.NAME] rules, each naming the alert and the field."""
    from mcpctl.metrics import parse_duration

    found = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            found.append(f"{name}: expected a table with metric, comparison, threshold, for, severity, actions")
            continue
        found += [f"{name}: unknown field {key!r}" for key in sorted(set(table) - FIELDS)]
        if table.get("metric") not in METRICS:
            found.append(f"{name}.metric: expected one of {', '.join(METRICS)}")
        if table.get("comparison", ">") not in COMPARISONS:
            found.append(f"{name}.comparison: expected one of {' '.join(COMPARISONS)}")
        threshold = table.get("threshold")
        numeric = isinstance(threshold, int | float) and not isinstance(threshold, bool) and math.isfinite(threshold)
        if not numeric and not (table.get("metric") == "state" and isinstance(threshold, str)):
            found.append(f'{name}.threshold: expected a number (or a state name for metric = "state")')
        if table.get("severity", "warning") not in SEVERITIES:
            found.append(f"{name}.severity: expected one of {', '.join(SEVERITIES)}")
        actions = table.get("actions", ["log"])
        if not isinstance(actions, list) or not all(a in ACTIONS for a in actions):
            found.append(f'{name}.actions: expected a list of "log", "restart" (and exec = [...] for a command)')
        command = table.get("exec", [])
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            found.append(f"{name}.exec: expected a command as a list of strings")
        hold = table.get("for", 0)
        try:
            parse_duration(str(hold))
        except ValueError:
            found.append(f"{name}.for: expected seconds or a duration such as 5m")
    return found


def rules(tables: Mapping[str, Any]) -> list[AlertRule]:
    """Rules from validated tables."""
    from mcpctl.metrics import parse_duration

    return [
        AlertRule(
            name=name,
            metric=table["metric"],
            comparison=table.get("comparison", ">"),
            threshold=table["threshold"],
            hold=parse_duration(str(table.get("for", 0))),
            severity=table.get("severity", "warning"),
            actions=tuple(table.get("actions", ["log"])),
            exec=tuple(table.get("exec", [])),
        )
        for name, table in tables.items()
    ]


@dataclass
class _Episode(Record):
    """One rule's current stretch of its condition holding."""

    since: float  # monotonic: when the condition started to hold
    fired: bool = False
    fired_at: float = 0.0  # wall time


@dataclass(frozen=True)
class Change(Record):
    """An alert that fired or resolved in this evaluation."""

    rule: AlertRule
    fired: bool  # False: resolved
    value: float | str | None
    message: str


class Evaluator:
    """Feeds each rule its metric; a rule fires once when its condition held for `hold` seconds.

    A sample without a value for a rule's metric (None: no ping decided yet, or the last one timed out) is
    no evidence either way: it neither starts nor ends that rule's episode. error_rate is the one metric
    taken over a window: the share of the pings and client requests answered in the rule's last `hold`
    seconds that failed, once this run has been watched that long; its episode fires as soon as it holds.
    """

    def __init__(self, alert_rules: list[AlertRule], clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = alert_rules
        self.clock = clock
        self.episodes: dict[str, _Episode] = {}
        self.answers: list[tuple[float, int, int]] = []  # this run's evaluations: when, answered, of which failed
        self.watched_since: float | None = None  # this run's first evaluation (monotonic)
        self.ended: list[Change] = []  # resolved by a new run, reported by the next evaluation

    def with_rules(self, alert_rules: list[AlertRule]) -> Evaluator:
        """An evaluator of new rules that keeps the episodes of rules whose name stayed (no fire twice)."""
        fresh = Evaluator(alert_rules, self.clock)
        names = {rule.name for rule in alert_rules}
        fresh.episodes = {name: episode for name, episode in self.episodes.items() if name in names}
        fresh.answers, fresh.watched_since = self.answers, self.watched_since
        fresh.ended = [change for change in self.ended if change.rule.name in names]
        return fresh

    def new_run(self) -> None:
        """A new run is ready: what the last one's pings and requests showed says nothing of this one, so the
        episodes of those metrics end (a fired one is reported resolved by the next evaluation) and error_rate's
        window starts again. The tree's figures, restarts and state go on: the next sample holds or ends them."""
        for rule in self.rules:
            episode = self.episodes.pop(rule.name, None) if rule.metric in PER_RUN else None
            if episode is not None and episode.fired:
                self.ended.append(Change(rule, False, None, f"{rule.name} resolved"))
        self.answers, self.watched_since = [], None

    def evaluate(self, values: Mapping[str, float | str | None], answers: tuple[int, int] = (0, 0)) -> list[Change]:
        """One sample: `values` by metric (error_rate's is not read), `answers` the pings and client
        requests answered since the last evaluation and how many of them failed."""
        now = self.clock()
        self._count(now, answers)
        changes, self.ended = self.ended, []
        for rule in self.rules:
            value = self.error_rate(rule.hold, now) if rule.metric == "error_rate" else values.get(rule.metric)
            if value is None:
                continue  # no data: the episode, or its absence, stands
            episode = self.episodes.get(rule.name)
            if rule.holds(value):
                episode = episode or self.episodes.setdefault(rule.name, _Episode(now))
                hold = 0 if rule.metric == "error_rate" else rule.hold  # its window was the hold
                if not episode.fired and now - episode.since >= hold:
                    episode.fired, episode.fired_at = True, time.time()
                    changes.append(Change(rule, True, value, f"{rule.name}: {rule.describe(value)}"))
            elif episode is not None:
                del self.episodes[rule.name]
                if episode.fired:
                    changes.append(Change(rule, False, value, f"{rule.name} resolved"))
        return changes

    def error_rate(self, window: float, now: float) -> float | None:
        """The share of the answers of the last `window` seconds that failed; None when none was answered in
        it, or this run was not watched for that long yet (the first failed ping is not 100 % of 5 min)."""
        if self.watched_since is None or now - self.watched_since < window:
            return None
        # (now - window, now]: the evaluation just made always, and exactly `window` seconds of them
        counted = [entry for entry in self.answers[:-1] if now - entry[0] < window] + self.answers[-1:]
        answered = sum(entry[1] for entry in counted)
        return round(sum(entry[2] for entry in counted) / answered, 3) if answered else None

    def _count(self, now: float, answers: tuple[int, int]) -> None:
        if self.watched_since is None:
            self.watched_since = now
        longest = max((rule.hold for rule in self.rules if rule.metric == "error_rate"), default=0.0)
        self.answers = [entry for entry in self.answers if now - entry[0] < longest]
        self.answers.append((now, *answers))

    def active(self) -> list[dict[str, Any]]:
        by_name = {rule.name: rule for rule in self.rules}
        return [
            {
                "name": name,
                "severity": by_name[name].severity,
                "since": episode.fired_at,
                "metric": by_name[name].metric,
            }
            for name, episode in self.episodes.items()
            if episode.fired
        ]
