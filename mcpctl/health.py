"""The shim's MCP ping loop: one ping in flight at a time, its latency, and consecutive failures."""

from __future__ import annotations

import time
from collections.abc import Callable

from mcpctl.constants import NagiosCode
from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.protocol import METHOD_NOT_FOUND
from mcpctl.states import SERVING, ServerState

# What a ping or a verdict says (English: records and --json carry it); KNOWN lets `check` show it translated.
NO_ANSWER, PING_ERROR = N_("no answer to ping within {timeout:g}s"), N_("ping error: {message}")
SILENT, CRITICAL = N_("its shim does not answer"), N_("critical alert: {names}")
FAILING, IN_A_ROW = N_("failing pings"), N_("{detail} ({failures} in a row)")
READY, READY_PING = N_("ready"), N_("ready, ping {latency:.1f} ms")
KNOWN = (NO_ANSWER, PING_ERROR, CRITICAL, IN_A_ROW, READY_PING)

PING_PREFIX = "mcpctl-ping-"


@dataclass(frozen=True)
class Health(Record):
    """The last ping's outcome."""

    ok: bool
    latency_ms: float | None
    checked_at: float
    consecutive_failures: int
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "latency_ms": self.latency_ms,
            "checked_at": self.checked_at,
            "consecutive_failures": self.consecutive_failures,
            "detail": self.detail or None,
        }


class Pinger:
    """Sends `ping` every `interval` seconds; a ping unanswered after `timeout` counts as a failure.

    `send` writes a JSON-RPC message to the server; `clock` is the monotonic clock (a parameter so
    the arithmetic can be tested without sleeping).
    """

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        interval: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.sequence = 0
        self.pending: tuple[str, float] | None = None  # (id, sent at)
        self.next_at = clock() + interval
        self.failures = 0
        self.last: Health | None = None
        self.window = [0, 0]  # pings decided, of which failed, since the last take_counts()

    def tick(self) -> Health | None:
        """Send a due ping or expire a late one; returns a new Health when one was decided."""
        now = self.clock()
        if self.pending is not None and now - self.pending[1] >= self.timeout:
            self.pending = None
            return self._record(ok=False, latency=None, detail=NO_ANSWER.format(timeout=self.timeout))
        if self.pending is None and now >= self.next_at:
            self.sequence += 1
            ping_id = f"{PING_PREFIX}{self.sequence}"
            self.pending = (ping_id, now)
            self.next_at = now + self.interval
            self.send({"jsonrpc": "2.0", "id": ping_id, "method": "ping"})
        return None

    def answer(self, message: dict[str, Any]) -> Health | None:
        """A response from the server; a Health if it answered our pending ping."""
        if self.pending is None or message.get("id") != self.pending[0]:
            return None
        latency = (self.clock() - self.pending[1]) * 1000
        self.pending = None
        error = message.get("error")
        if isinstance(error, dict) and error.get("code") == METHOD_NOT_FOUND:
            return self._record(ok=True, latency=latency)  # it answered: alive, whatever its era has of ping
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            return self._record(ok=False, latency=latency, detail=PING_ERROR.format(message=error.get("message", "?")))
        return self._record(ok=True, latency=latency)

    def next_wakeup(self) -> float:
        if self.pending is not None:
            return self.pending[1] + self.timeout
        return self.next_at

    def take_counts(self) -> tuple[int, int]:
        """Pings decided since the last call, and how many of them failed; then start again."""
        decided, failed = self.window
        self.window = [0, 0]
        return decided, failed

    def _record(self, ok: bool, latency: float | None, detail: str = "") -> Health:
        self.failures = 0 if ok else self.failures + 1
        self.window[0] += 1
        self.window[1] += 0 if ok else 1
        rounded = round(latency, 2) if latency is not None else None
        self.last = Health(ok, rounded, time.time(), self.failures, detail)
        return self.last


@dataclass(frozen=True)
class Verdict(Record):
    """What `mcpctl check` says of one server."""

    name: str
    status: str  # ok | unhealthy | unresponsive | not_running
    detail: str
    critical_alert: bool = False  # unhealthy because an alert of severity "critical" fires

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def verdict(name: str, state: str, health: dict[str, Any] | None, firing: list[dict[str, Any]]) -> Verdict:
    if state == ServerState.UNRESPONSIVE:  # its record, pings included, is as old as the freeze
        return Verdict(name, "unresponsive", SILENT)
    critical = [a["name"] for a in firing if a.get("severity") == "critical"]
    if state in SERVING and critical:
        return Verdict(name, "unhealthy", CRITICAL.format(names=", ".join(critical)), critical_alert=True)
    if state == ServerState.UNHEALTHY or (
        state == ServerState.READY and health is not None and not health.get("ok", True)
    ):
        failures = health.get("consecutive_failures", 0) if health else 0
        detail = (health or {}).get("detail") or FAILING
        return Verdict(name, "unhealthy", IN_A_ROW.format(detail=detail, failures=failures))
    if state == ServerState.READY:
        latency = health.get("latency_ms") if health else None
        return Verdict(name, "ok", READY_PING.format(latency=latency) if latency is not None else READY)
    return Verdict(name, "not_running", state)


def nagios_level(verdicts: list[Verdict]) -> NagiosCode:
    """The worst of the servers' levels by the monitoring-plugin convention: OK every one is ok; WARNING one
    serves but fails its pings; CRITICAL one is not serving (not running, or its shim does not answer) or a
    critical alert fires; UNKNOWN when there is no server to check (a check of nothing is no OK)."""
    if not verdicts:
        return NagiosCode.UNKNOWN
    return max(nagios_level_of(v) for v in verdicts)


def nagios_level_of(v: Verdict) -> NagiosCode:
    if v.status == "ok":
        return NagiosCode.OK
    if v.status == "unhealthy" and not v.critical_alert:
        return NagiosCode.WARNING
    return NagiosCode.CRITICAL
