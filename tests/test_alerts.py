"""Alert rules: the episode arithmetic with a fake clock; firing, actions and resolution on real servers."""

from __future__ import annotations

import json
import sys
from typing import Any

from mcpctl.alerts import AlertRule, Evaluator, defaults
from tests.conftest import Env, fixture_server, settle, tiny_server, wait_for

FAST = {"metrics_interval": 0.2, "health_interval": 0.2}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_alert_fires_once_per_episode_after_its_hold_and_resolves() -> None:
    clock = Clock()
    evaluator = Evaluator([AlertRule("hot", "cpu_percent", ">", 90, hold=5)], clock)
    assert evaluator.evaluate({"cpu_percent": 95}) == []
    clock.now = 4
    assert evaluator.evaluate({"cpu_percent": 99}) == []
    clock.now = 5
    fired = evaluator.evaluate({"cpu_percent": 97})
    assert [(c.rule.name, c.fired) for c in fired] == [("hot", True)]
    assert fired[0].message == "hot: cpu_percent 97 > 90 for 5s"
    clock.now = 9
    assert evaluator.evaluate({"cpu_percent": 97}) == []  # once per episode
    assert [a["name"] for a in evaluator.active()] == ["hot"]
    resolved = evaluator.evaluate({"cpu_percent": 10})
    assert [(c.rule.name, c.fired) for c in resolved] == [("hot", False)]
    assert evaluator.active() == []


def test_a_dip_restarts_the_hold() -> None:
    clock = Clock()
    evaluator = Evaluator([AlertRule("slow", "ping_latency_ms", ">=", 100, hold=3)], clock)
    evaluator.evaluate({"ping_latency_ms": 150})
    clock.now = 2
    evaluator.evaluate({"ping_latency_ms": 50})  # dipped: no episode any more
    clock.now = 4
    assert evaluator.evaluate({"ping_latency_ms": 150}) == []
    clock.now = 7
    assert len(evaluator.evaluate({"ping_latency_ms": 150})) == 1
    assert evaluator.evaluate({"ping_latency_ms": None}) == []  # no value (a ping timed out): no evidence
    assert evaluator.evaluate({"ping_latency_ms": 50}) != []  # a real value that does not hold resolves it


def test_defaults_cover_cpu_memory_latency_and_errors() -> None:
    rules = {r.name: r for r in defaults(health_interval=30)}
    assert set(rules) == {"high_cpu", "high_memory", "slow_response", "high_error_rate"}
    assert rules["slow_response"].hold == 90
    assert {n for n, r in rules.items() if "restart" in r.actions} == {"high_error_rate"}
    memory = rules["high_memory"]  # a big browser is not a broken one: warn, by its PSS, never restart
    assert (memory.metric, memory.severity, memory.actions) == ("memory_mb", "warning", ("log",))


def alert_server(env: Env, alerts: dict[str, Any], **settings: Any) -> None:
    env.write_config({"hog": fixture_server("leak", **FAST, alerts=alerts, **settings)})


def test_a_critical_alert_fires_runs_its_command_and_makes_check_exit_6(env: Env) -> None:
    out = env.workdir / "alert.json"
    command = [sys.executable, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"]
    alerts = {
        "big": {"metric": "rss_mb", "comparison": ">", "threshold": 60, "for": 0, "severity": "critical",
                "actions": ["log"], "exec": command},
    }  # fmt: skip
    alert_server(env, alerts)
    assert env.run("start", "hog").returncode == 0
    settle(env, "hog", lambda s: s.get("alerts"))
    assert env.run("check", "hog").returncode == 6
    nagios = env.run("check", "--nagios", "hog")
    assert nagios.returncode == 2  # an alert of severity critical is CRITICAL, though the server serves
    assert nagios.stdout.startswith("MCPCTL CRITICAL - hog unhealthy: critical alert: big")
    listing = env.json("alerts")["alerts"]
    assert [(a["server"], a["name"], a["severity"]) for a in listing] == [("hog", "big", "critical")]
    payload = json.loads(wait_for(lambda: out.exists() and out.read_text()))
    assert (payload["alert"], payload["event"], payload["server"]) == ("big", "alert_fired", "hog")
    journal = [json.loads(line) for line in (env.paths.servers / "hog" / "events.jsonl").read_text().splitlines()]
    assert [e["alert"] for e in journal if e["event"] == "alert_fired"] == ["big"]


def test_an_alert_with_restart_restarts_through_backoff(env: Env) -> None:
    alerts = {"big": {"metric": "rss_mb", "threshold": 60, "severity": "critical", "actions": ["log", "restart"]}}
    alert_server(env, alerts, backoff_base=0.2)
    assert env.run("start", "hog").returncode == 0
    status = settle(env, "hog", lambda s: s.get("restarts", 0) >= 1, timeout=30)
    assert status["last_failure"]["type"] == "unhealthy"  # the history: a ready server shows no current error
    assert "alert big: rss_mb" in status["last_failure"]["message"]


def test_bad_alert_config_is_exit_2_naming_the_field(env: Env) -> None:
    env.config.write_text('[alerts.x]\nmetric = "temperature"\nthreshold = 1\nseverity = "dire"\n')
    proc = env.run("check")
    assert proc.returncode == 2
    assert "alerts.x.metric: expected one of" in proc.stderr
    assert "alerts.x.severity" in proc.stderr


def test_a_slow_answer_fires_a_latency_alert(env: Env) -> None:
    alerts = {"slow": {"metric": "ping_latency_ms", "comparison": ">", "threshold": 300, "for": 0}}
    # legacy: a slow `ping` is what is measured (a modern server is pinged with server/discover)
    slow = {"env": {"PING_DELAY": "0.5"}, "health_timeout": 2, "protocol": "legacy"}
    server = fixture_server("healthy", alerts=alerts, **slow, **FAST)
    env.write_config({"lazy": server})
    assert env.run("start", "lazy").returncode == 0
    health = settle(env, "lazy", lambda s: s.get("health"))["health"]
    assert health["ok"] is True
    assert health["latency_ms"] >= 500
    settle(env, "lazy", lambda s: s.get("alerts"))
    assert env.run("check", "lazy").returncode == 0  # a warning alert is not a failed check
    assert env.json("alerts")["alerts"][0]["severity"] == "warning"


def test_half_the_pings_failing_over_the_window_fire_the_error_rate_alert_and_answers_resolve_it(env: Env) -> None:
    failing = env.workdir / "failing"
    failing.touch()
    alerts = {"errors": {"metric": "error_rate", "threshold": 0.2, "for": "2s", "severity": "critical"}}
    lenient = {"health_timeout": 10, "unhealthy_after": 100}  # a stall on a loaded machine turns nothing unhealthy
    server = tiny_server(env={"FAILING_PINGS": str(failing)}, alerts=alerts, protocol="legacy", **lenient, **FAST)
    env.write_config({"flaky": server})
    assert env.run("start", "flaky").returncode == 0
    # a sample every 0.2 s, a ping every 0.2 s: most samples hold one ping, ok or failed, some none
    status = settle(env, "flaky", lambda s: s.get("alerts"), timeout=60)
    assert [(a["name"], a["severity"]) for a in status["alerts"]] == [("errors", "critical")]
    assert status["state"] == "ready"  # not unhealthy: only the alert says it
    assert env.run("check", "flaky").returncode == 6
    failing.unlink()
    settle(env, "flaky", lambda s: not s.get("alerts"), timeout=60)
    journal = [json.loads(line) for line in (env.paths.servers / "flaky" / "events.jsonl").read_text().splitlines()]
    changes = [(e["event"], e["alert"]) for e in journal if e["event"].startswith("alert_")]
    assert (changes[0], changes[-1]) == (("alert_fired", "errors"), ("alert_resolved", "errors"))
    assert env.run("check", "flaky").returncode == 0
