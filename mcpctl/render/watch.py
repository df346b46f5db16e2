"""Live views of running servers: resource samples, the `top` table, firing alerts."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from mcpctl.i18n import N_, _
from mcpctl.render.output import console, duration, emit_json, megabytes, say, table
from mcpctl.render.servers import STATE_STYLE, state_text
from mcpctl.states import SERVING

if TYPE_CHECKING:
    from mcpctl.control.observe import Observation

NO_SAMPLES = N_("no samples for {name} in that window (is it running? samples come every metrics_interval)")


def metrics(name: str, samples: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"name": name, "samples": samples})
        return
    if not samples:
        say(_(NO_SAMPLES).format(name=name))
        return
    rows = [
        [
            time.strftime("%H:%M:%S", time.localtime(s["ts"])),
            f"{s['cpu_percent']:.1f}",
            megabytes(_memory(s)),
            str(s["fds"]),
            str(s["threads"]),
            str(s["processes"]),
            f"{s['ping_latency_ms']:.1f}" if s.get("ping_latency_ms") is not None else "-",
            f"{s['error_rate']:.0%}" if s.get("error_rate") is not None else "-",
        ]
        for s in samples
    ]
    table(["TIME", "CPU%", "MEM(PSS)", "FDS", "THREADS", "PROCS", "PING(ms)", "ERRORS"], rows)


def _memory(sample: dict[str, Any]) -> int:
    """The tree's PSS; summed RSS for samples taken before mcpctl measured PSS."""
    return int(sample.get("memory_bytes", sample["rss_bytes"]))


def _top_rows(observations: list[Observation]) -> list[list[str]]:
    rows = []
    for obs in observations:
        sample = obs.record.metrics if obs.state in SERVING else None
        health = obs.record.health if obs.state in SERVING else None
        rows.append(
            [
                obs.name,
                state_text(obs),
                str(obs.pid or "-"),
                f"{sample['cpu_percent']:.1f}" if sample else "-",
                megabytes(_memory(sample)) if sample else "-",
                f"{health['latency_ms']:.1f}" if health and health.get("latency_ms") is not None else "-",
                str(obs.record.restarts),
                duration(obs.uptime_s),
            ]
        )
    return rows


_TOP_HEADER = ["NAME", "STATE", "PID", "CPU%", "MEM(PSS)", "PING(ms)", "RESTARTS", "UPTIME"]


def top(snapshot: Callable[[], list[Observation]], interval: float) -> None:
    """Live on a terminal (q or Ctrl-C quits); one plain snapshot otherwise."""
    if not sys.stdout.isatty():
        table(_TOP_HEADER, _top_rows(snapshot()))
        return
    from rich.live import Live

    with _cbreak() as keys, Live(_top_table(snapshot()), console=console(), auto_refresh=False) as live:
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
        grid.add_row(*row, style=STATE_STYLE.get(row[1].split(" ", 1)[0], ""))
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
        say(_("no alerts firing"))
        return
    rows = [
        [a["server"], a["name"], a["severity"], a["metric"], time.strftime("%H:%M:%S", time.localtime(a["since"]))]
        for a in firing
    ]
    table(["SERVER", "ALERT", "SEVERITY", "METRIC", "SINCE"], rows)
