"""Whole-tree resource samples, their bounded journal, zombies, `metrics` and `top`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mcpctl import metrics
from tests.conftest import Env, fixture_server, settle, wait_for

FAST = {"metrics_interval": 0.2, "health_interval": 0.2}


def sample_log(env: Env, name: str) -> list[dict[str, object]]:
    return metrics.read(env.paths.servers / name / "metrics.jsonl")


def test_samples_cover_the_tree_and_reach_status_and_the_metrics_command(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", **FAST)})
    assert env.run("start", "demo").returncode == 0
    wait_for(lambda: len(sample_log(env, "demo")) >= 3)
    latest = env.status("demo")["metrics"]
    assert latest["processes"] == 1
    assert latest["rss_bytes"] > 5 * 1024 * 1024
    assert latest["fds"] >= 3
    assert latest["threads"] >= 1
    report = env.json("metrics", "demo", "--since", "1m")
    assert report["name"] == "demo"
    assert len(report["samples"]) >= 3
    assert any(s["ping_latency_ms"] is not None for s in report["samples"])
    table = env.run("metrics", "demo")
    assert table.returncode == 0
    assert table.stdout.startswith("TIME")
    assert env.run("metrics", "demo", "--since", "soon").returncode == 2
    assert env.run("metrics", "nosuch").returncode == 8


def test_memory_growth_shows_in_the_samples(env: Env) -> None:
    env.write_config({"hog": fixture_server("leak", **FAST)})
    assert env.run("start", "hog").returncode == 0
    first = wait_for(lambda: sample_log(env, "hog"))[0]["rss_bytes"]
    wait_for(lambda: sample_log(env, "hog")[-1]["rss_bytes"] > first + 30 * 1024 * 1024, timeout=15)


def test_a_zombie_in_the_tree_is_reported(env: Env) -> None:
    env.write_config({"z": fixture_server("zombie", **FAST)})
    assert env.run("start", "z").returncode == 0
    sample = wait_for(lambda: next((s for s in sample_log(env, "z") if s["zombies"]), None))
    assert len(sample["zombies"]) == 1  # type: ignore[arg-type]
    journal = env.paths.servers / "z" / "events.jsonl"

    def journaled() -> bool:  # the shim journals what a sample found just after it appends the sample
        return any(json.loads(line)["event"] == "zombie" for line in journal.read_text().splitlines())

    wait_for(journaled, timeout=5)


def test_the_journal_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_BYTES", 2000)
    path = tmp_path / "metrics.jsonl"
    sample = metrics.Sample(1.0, 0.0, 1, 1, "pss", 1, 1, 1, (), None, None)
    for _ in range(500):
        metrics.append(path, sample)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["metrics.jsonl", "metrics.jsonl.1"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    assert 0 < len(metrics.read(path)) < 500


def test_top_prints_one_snapshot_when_not_a_terminal(env: Env) -> None:
    env.write_config({"demo": fixture_server("healthy", **FAST), "idle": fixture_server("healthy")})
    assert env.run("start", "demo").returncode == 0
    settle(env, "demo", lambda s: s.get("metrics"))
    proc = env.run("top", timeout=20)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "PID", "CPU%", "MEM(PSS)", "PING(ms)", "RESTARTS", "UPTIME"]
    assert lines[1].split()[:2] == ["demo", "ready"]
    assert lines[2].split()[:2] == ["idle", "stopped"]


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("30s", 30), ("10m", 600), ("2h", 7200), ("1.5d", 129600)])
def test_durations(text: str, seconds: float) -> None:
    assert metrics.parse_duration(text) == seconds


def test_memory_is_the_trees_pss_and_shared_pages_trigger_no_default_restart(env: Env) -> None:
    shared = str(Path(__file__).parent / "fixtures" / "shared_memory.py")
    alerts = {
        "by_pss": {"metric": "memory_mb", "threshold": 400, "for": 0, "severity": "critical", "actions": ["restart"]},
        "by_rss": {"metric": "rss_mb", "threshold": 600, "for": 0, "severity": "info"},
    }
    env.write_config({"tree": {"command": sys.executable, "args": [shared, "200", "3"], "metrics_interval": 0.5,
                               "alerts": alerts}})  # fmt: skip
    assert env.run("start", "tree").returncode == 0

    def sampled() -> dict[str, Any] | None:
        metrics = env.status("tree").get("metrics")
        return metrics if metrics and metrics["processes"] == 4 and metrics["rss_bytes"] > 800e6 else None

    metrics = wait_for(sampled, timeout=30)
    assert metrics["memory_kind"] == "pss"
    assert 200e6 < metrics["memory_bytes"] < 400e6  # the mapping once, plus four small interpreters
    assert metrics["rss_bytes"] > 2 * metrics["memory_bytes"]
    fired = wait_for(lambda: env.status("tree")["alerts"], timeout=15)
    assert [a["name"] for a in fired] == ["by_rss"]  # summed RSS is past 600 MB; PSS is not past 400
    time.sleep(2)  # a few more samples
    status = env.status("tree")
    assert status["state"] == "ready"
    assert status["restarts"] == 0
    assert "MEM(PSS)" in env.run("metrics", "tree").stdout
