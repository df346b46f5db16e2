"""/metrics: the servers' state from their records (read at each scrape) and the gateway's own counters."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mcpctl.states import ServerState

if TYPE_CHECKING:
    from mcpctl.gateway.members import Members

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class GatewayMetrics:
    """The registry /metrics serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mcpctl_gateway_requests",
            "MCP requests through the gateway",
            ("server", "method", "outcome"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "mcpctl_gateway_request_duration_seconds",
            "Time to answer an MCP request",
            ("server", "method"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.connections = Gauge(
            "mcpctl_gateway_connections", "HTTP requests and streams open now", registry=self.registry
        )
        self.sessions = Gauge("mcpctl_gateway_sessions", "MCP sessions open now", registry=self.registry)
        self.auth_failures = Counter(
            "mcpctl_gateway_auth_failures", "Requests refused by auth", ("reason",), registry=self.registry
        )

    def watch(self, members: Members) -> None:
        self.registry.register(ServerCollector(members))

    def request(self, server: str, method: str, outcome: str, seconds: float) -> None:
        self.requests.labels(server, method, outcome).inc()
        if outcome in ("ok", "error"):
            self.duration.labels(server, method).observe(seconds)

    def text(self, scope: Collection[str] | None = None) -> bytes:
        """The exposition; with a scope, only the series of those servers (and those that name no server)."""
        return generate_latest(self.registry if scope is None else _Scoped(self.registry, scope))


class _Scoped:
    """The registry's families, without the samples labelled with a server outside `scope`."""

    def __init__(self, registry: CollectorRegistry, scope: Collection[str]) -> None:
        self.registry = registry
        self.scope = scope

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if "server" not in s.labels or s.labels["server"] in self.scope]
            yield kept


class ServerCollector:
    """One series per configured server of each of: state, up, restarts, failures, ping, CPU, memory."""

    def __init__(self, members: Members) -> None:
        self.members = members

    def describe(self) -> list[Metric]:
        return []  # the series are known only at a scrape

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily("mcpctl_server_state", "1 for the state the server is in", labels=("server", "state"))
        up = GaugeMetricFamily(
            "mcpctl_server_up", "1 when the server answers MCP (ready or unhealthy)", labels=("server",)
        )
        restarts = CounterMetricFamily("mcpctl_server_restarts", "Restarts by the shim", labels=("server",))
        failures = CounterMetricFamily("mcpctl_server_failures", "Failed runs", labels=("server",))
        ping = GaugeMetricFamily("mcpctl_server_ping_latency_seconds", "The last ping's round trip", labels=("server",))
        cpu = GaugeMetricFamily("mcpctl_server_cpu_percent", "CPU of the server's process tree", labels=("server",))
        memory = GaugeMetricFamily(
            "mcpctl_server_memory_bytes",
            "Memory of the tree (PSS where the kernel gives it)",
            labels=("server", "kind"),
        )
        for name in self.members.config.servers:
            record = self.members.record(name)
            current = record.state if record is not None else ServerState.STOPPED
            for each in ServerState:
                state.add_metric((name, each.value), 1.0 if each == current else 0.0)
            up.add_metric((name,), 1.0 if current in (ServerState.READY, ServerState.UNHEALTHY) else 0.0)
            restarts.add_metric((name,), float(record.restarts if record else 0))
            failures.add_metric((name,), float(record.total_failures if record else 0))
            health = (record.health if record else None) or {}
            if isinstance(health.get("latency_ms"), int | float):
                ping.add_metric((name,), health["latency_ms"] / 1000)
            sample = (record.metrics if record else None) or {}
            if isinstance(sample.get("cpu_percent"), int | float):
                cpu.add_metric((name,), float(sample["cpu_percent"]))
            if isinstance(sample.get("memory_bytes"), int):
                memory.add_metric((name, str(sample.get("memory_kind", "pss"))), float(sample["memory_bytes"]))
        yield from (state, up, restarts, failures, ping, cpu, memory)
