"""Everything mcpctl shows: human text (rich, on a terminal) or JSON. The only module that touches rich."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mcpctl.constants import JSON_SCHEMA
from mcpctl.states import SERVING, ServerState, StartOutcome, StopOutcome

if TYPE_CHECKING:  # only for annotations: `call` and `tools` must not pay for psutil and the config loader
    from mcpctl.config.environment import Resolution
    from mcpctl.config.model import Config
    from mcpctl.control.observe import Observation
    from mcpctl.control.results import StartResult, StopResult
    from mcpctl.errors import MCPCtlError
    from mcpctl.health import Verdict


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"schema": JSON_SCHEMA, **payload}, indent=2) + "\n")


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def error(exc: MCPCtlError, as_json: bool) -> None:
    if as_json:
        emit_json({"error": exc.to_json()})
    lines = exc.details or [exc.message]
    out = sys.stderr
    for line in lines:
        out.write(f"error: {line}\n")
    if exc.hint:
        out.write(f"hint: {exc.hint}\n")


def status(observations: list[Observation], as_json: bool) -> None:
    if as_json:
        emit_json({"servers": [o.to_json() for o in observations]})
        return
    for obs in observations:
        if obs.warning:
            sys.stderr.write(f"warning: {obs.name}: {obs.warning}\n")
    if not observations:
        sys.stdout.write("no servers configured (see `mcpctl list`, or pass -f mcpctl.toml)\n")
        return
    rows = [
        [
            obs.name,
            _state_text(obs),
            str(obs.pid or "-"),
            duration(obs.uptime_s),
            str(obs.record.restarts),
            f"{obs.record.consecutive_failures}/{obs.record.total_failures}",
            _last_error(obs),
        ]
        for obs in observations
    ]
    table(["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "FAILURES", "LAST ERROR"], rows, styles={1: _STATE_STYLE})
    drifted = [obs.name for obs in observations if obs.config_drift in _DRIFT]
    if drifted:
        sys.stderr.write(f"hint: config changed for {', '.join(drifted)}: run `mcpctl apply` (`mcpctl config diff`)\n")


_DRIFT = {"changed": " (config changed, run mcpctl apply)", "removed": " (not in config, run mcpctl apply)"}


def _state_text(obs: Observation) -> str:
    drift = _DRIFT.get(obs.config_drift or "", "")
    if obs.state == ServerState.BACKOFF:
        return f"backoff (retry in {duration(obs.cooldown_left)}){drift}"
    if obs.state == ServerState.FAILED and obs.cooldown_left:
        return f"failed (cooldown {duration(obs.cooldown_left)})"
    return obs.state + drift


def _last_error(obs: Observation) -> str:
    error = obs.record.last_error
    return f"{error.type.value}: {error.message}" if error else ""


def table(header: list[str], rows: list[list[str]], styles: dict[int, dict[str, str]] | None = None) -> None:
    """Aligned columns; coloured through rich only on a terminal (and never under NO_COLOR)."""
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        _rich_table(header, rows, styles or {})
        return
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        sys.stdout.write("  ".join([*cells, row[-1]]).rstrip() + "\n")


def _rich_table(header: list[str], rows: list[list[str]], styles: dict[int, dict[str, str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, pad_edge=False, header_style="bold")
    for column in header:
        grid.add_column(column, no_wrap=column != header[-1])
    for row in rows:
        cells = [Text(cell, style=styles.get(i, {}).get(cell.split(" ", 1)[0], "")) for i, cell in enumerate(row)]
        grid.add_row(*cells)
    _console().print(grid)


_STATE_STYLE = {
    "ready": "green",
    "starting": "yellow",
    "backoff": "yellow",
    "unhealthy": "red",
    "stopping": "yellow",
    "failed": "red",
    "stopped": "dim",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d{hours % 24:02d}h"


def start(results: list[StartResult], as_json: bool, quiet: bool = False) -> None:
    if as_json:
        emit_json({"results": [_start_json(r) for r in results]})
        return
    for result in results:
        obs = result.observation
        if quiet and result.ok:
            continue
        if result.outcome == StartOutcome.STARTED:
            _say(f"{result.name}: ready in {result.elapsed_s:.2f}s (pid {obs.pid or '-'})")
        elif result.outcome == StartOutcome.SPAWNED:
            _say(f"{result.name}: starting (not waiting for ready; see `mcpctl status {result.name}`)")
        elif result.outcome == StartOutcome.ALREADY_RUNNING:
            _say(f"{result.name}: already {obs.state} (pid {obs.pid or '-'})")
        elif result.outcome == StartOutcome.SKIPPED:
            _skipped(result)
        elif result.outcome == StartOutcome.ENV_INVALID:
            _env_refused(result)
        else:
            _start_failure(result)


def _env_refused(result: StartResult) -> None:
    failure = result.error
    assert failure is not None
    sys.stderr.write(f"error: {result.name}: environment check failed, nothing was started [{failure.type.value}]\n")
    for problem in failure.message.split(": ", 1)[-1].split("; "):
        sys.stderr.write(f"  - {problem}\n")
    sys.stderr.write(f"hint: {failure.hint}; see `mcpctl env check {result.name}`\n")


def _skipped(result: StartResult) -> None:
    failure = result.error
    assert failure is not None
    sys.stderr.write(f"skipped: {failure.message}\n")
    if failure.hint:
        sys.stderr.write(f"hint: {failure.hint}\n")


def _start_failure(result: StartResult) -> None:
    failure = result.error
    message = failure.message if failure else "did not become ready"
    kind = f" [{failure.type.value}]" if failure else ""
    sys.stderr.write(f"error: {result.name} did not become ready{kind}: {message}\n")
    if result.stderr_tail:
        sys.stderr.write(f"  last {len(result.stderr_tail)} line(s) of its stderr:\n")
        for line in result.stderr_tail:
            sys.stderr.write(f"  | {line}\n")
    obs = result.observation
    if obs.state == ServerState.BACKOFF:
        record = obs.record
        sys.stderr.write(
            f"  retrying in {obs.cooldown_left:.1f}s (failure {record.consecutive_failures}; "
            f"`mcpctl stop {result.name}` to give up)\n"
        )
    if failure and failure.hint:
        sys.stderr.write(f"hint: {failure.hint}\n")


def _start_json(result: StartResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "outcome": result.outcome,
        "ok": result.ok,
        "elapsed_s": result.elapsed_s,
        "error": result.error.to_json() if result.error else None,
        "stderr_tail": list(result.stderr_tail),
        "server": result.observation.to_json(),
    }


def stop(results: list[StopResult], as_json: bool) -> None:
    if as_json:
        emit_json({"results": [_stop_json(r) for r in results]})
        return
    for result in results:
        if result.outcome == StopOutcome.NOT_RUNNING:
            _say(f"{result.name}: not running")
            continue
        extra = f"; ended {result.leftovers_ended} leftover process(es)" if result.leftovers_ended else ""
        _say(f"{result.name}: stopped in {result.elapsed_s:.2f}s{extra}")


def _stop_json(result: StopResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "outcome": result.outcome,
        "elapsed_s": result.elapsed_s,
        "leftovers_ended": result.leftovers_ended,
    }


def metrics(name: str, samples: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"name": name, "samples": samples})
        return
    if not samples:
        _say(f"no samples for {name} in that window (is it running? samples come every metrics_interval)")
        return
    rows = [
        [
            time.strftime("%H:%M:%S", time.localtime(s["ts"])),
            f"{s['cpu_percent']:.1f}",
            megabytes(s["rss_bytes"]),
            str(s["fds"]),
            str(s["threads"]),
            str(s["processes"]),
            f"{s['ping_latency_ms']:.1f}" if s.get("ping_latency_ms") is not None else "-",
            f"{s['error_rate']:.0%}" if s.get("error_rate") is not None else "-",
        ]
        for s in samples
    ]
    table(["TIME", "CPU%", "RSS", "FDS", "THREADS", "PROCS", "PING(ms)", "ERRORS"], rows)


def megabytes(count: int) -> str:
    return f"{count / 1024 / 1024:.1f}M"


def _top_rows(observations: list[Observation]) -> list[list[str]]:
    rows = []
    for obs in observations:
        sample = obs.record.metrics if obs.state in SERVING else None
        health = obs.record.health if obs.state in SERVING else None
        rows.append(
            [
                obs.name,
                _state_text(obs),
                str(obs.pid or "-"),
                f"{sample['cpu_percent']:.1f}" if sample else "-",
                megabytes(sample["rss_bytes"]) if sample else "-",
                f"{health['latency_ms']:.1f}" if health and health.get("latency_ms") is not None else "-",
                str(obs.record.restarts),
                duration(obs.uptime_s),
            ]
        )
    return rows


_TOP_HEADER = ["NAME", "STATE", "PID", "CPU%", "RSS", "PING(ms)", "RESTARTS", "UPTIME"]


def top(snapshot: Callable[[], list[Observation]], interval: float) -> None:
    """Live on a terminal (q or Ctrl-C quits); one plain snapshot otherwise."""
    if not sys.stdout.isatty():
        table(_TOP_HEADER, _top_rows(snapshot()))
        return
    from rich.live import Live

    with _cbreak() as keys, Live(_top_table(snapshot()), console=_console(), auto_refresh=False) as live:
        while True:
            if keys(interval) in ("q", "Q"):
                return
            live.update(_top_table(snapshot()), refresh=True)


def _top_table(observations: list[Observation]) -> Any:
    from rich.table import Table

    grid = Table(title=f"mcpctl top  {time.strftime('%H:%M:%S')}  (q to quit)", box=None, header_style="bold")
    for column in _TOP_HEADER:
        grid.add_column(column, no_wrap=True)
    for row in _top_rows(observations):
        grid.add_row(*row, style=_STATE_STYLE.get(row[1].split(" ", 1)[0], ""))
    return grid


@contextlib.contextmanager
def _cbreak() -> Iterator[Callable[[float], str]]:
    """Read single keys from the terminal without echo; yields `wait(seconds) -> key or ''`."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    if not os.isatty(fd):

        def idle(seconds: float) -> str:
            time.sleep(seconds)
            return ""

        try:
            yield idle
        except KeyboardInterrupt:
            return
        return
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:

        def wait(seconds: float) -> str:
            ready, _, _ = select.select([fd], [], [], seconds)
            return os.read(fd, 1).decode(errors="ignore") if ready else ""

        yield wait
    except KeyboardInterrupt:
        return
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def alerts(firing: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"alerts": firing})
        return
    if not firing:
        _say("no alerts firing")
        return
    rows = [
        [a["server"], a["name"], a["severity"], a["metric"], time.strftime("%H:%M:%S", time.localtime(a["since"]))]
        for a in firing
    ]
    table(["SERVER", "ALERT", "SEVERITY", "METRIC", "SINCE"], rows)


def check(verdicts: list[Verdict], as_json: bool, nagios: bool) -> None:
    if as_json:
        emit_json({"ok": all(v.status == "ok" for v in verdicts), "servers": [v.to_json() for v in verdicts]})
        return
    if nagios:
        bad = [v for v in verdicts if v.status != "ok"]
        level = "CRITICAL" if bad else "OK"
        summary = "; ".join(f"{v.name} {v.status}: {v.detail}" for v in bad) or f"{len(verdicts)} server(s) ready"
        _say(f"MCPCTL {level} - {summary}")
        return
    for v in verdicts:
        _say(f"{v.name}: {v.status.replace('_', ' ')} ({v.detail})")


def env_check(reports: list[tuple[str, Resolution]], as_json: bool) -> None:
    if as_json:
        servers = [
            {"name": name, "ok": r.ok, "problems": r.problems, "variables": [v.to_json() for v in r.variables]}
            for name, r in reports
        ]
        emit_json({"servers": servers})
        return
    for name, resolution in reports:
        verdict = "ok" if resolution.ok else f"{len(resolution.problems)} problem(s)"
        _say(f"{name}: {verdict}")
        rows = [[v.name, v.status, v.source, v.problem or ""] for v in resolution.variables]
        if rows:
            table(["  VARIABLE", "STATUS", "SOURCE", "PROBLEM"], [[f"  {r[0]}", *r[1:]] for r in rows])
        for problem in resolution.problems:
            if not any(problem.startswith(f"{v.name}:") for v in resolution.variables):
                _say(f"  - {problem}")


def env_rules(rules: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"rules": rules})
        return
    if not rules:
        _say("no rules (add one with `mcpctl env rule add NAME VAR --pattern REGEX`)")
        return
    rows = [
        [
            str(r.get("server", "")),
            str(r["var"]),
            "yes" if r.get("required", True) else "no",
            "yes" if r.get("non_empty") else "no",
            str(r.get("min_length") or "-"),
            str(r.get("pattern") or "-"),
            str(r.get("origin", "mcpctl env rule")),
        ]
        for r in rules
    ]
    table(["SERVER", "VARIABLE", "REQUIRED", "NON-EMPTY", "MIN-LENGTH", "PATTERN", "FROM"], rows)


def server_list(config: Config, as_json: bool) -> None:
    from mcpctl.config.views import config_hash
    from mcpctl.redaction import Redactor

    rows: list[dict[str, Any]] = [
        {
            "name": s.name,
            "transport": s.transport,
            "command": s.command,
            "args": [Redactor(s.env.values())(arg) for arg in s.args],
            "url": s.url,
            "cwd": s.cwd,
            "env": sorted(s.env),  # names only: values may be secrets
            "startup_timeout": s.startup_timeout,
            "stop_timeout": s.stop_timeout,
            "config_hash": config_hash(config, s),
        }
        for s in config.servers.values()
    ]
    if as_json:
        emit_json({"config": str(config.path) if config.path else None, "servers": rows})
        return
    if not rows:
        _say("no servers configured")
        return
    for row in rows:
        target = row["url"] or " ".join([row["command"] or "", *row["args"]])
        env = f"  env: {', '.join(row['env'])}" if row["env"] else ""
        _say(f"{row['name']}  [{row['transport']}]  {target}{env}")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
