"""`mcpctl logs` and `mcpctl events`: read and follow what the shims wrote."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from mcpctl import backlog
from mcpctl.cli.app import Globals, Json, Names, app, known_servers
from mcpctl.errors import UsageError
from mcpctl.i18n import _

# No default in the option: -n absent means 20 (50 events), or with --since all since then; both given, the
# last N since then (mcpctl/backlog.py, which Manager.logs and .events follow too).
LogLines = Annotated[
    int | None,
    typer.Option(
        "-n",
        "--lines",
        min=0,
        help="How many of the last lines to show (default 20; with --since, default all since then).",
    ),
]
EventLines = Annotated[
    int | None,
    typer.Option(
        "-n",
        "--lines",
        min=0,
        help="How many of the last events to show (default 50; with --since, default all since then).",
    ),
]
Follow = Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new lines as they come (Ctrl-C ends).")]
Since = Annotated[str | None, typer.Option("--since", help="Only lines newer than this: 30s, 10m, 2h, 1d.")]
POLL_INTERVAL = 0.2


@app.command()
def logs(
    ctx: typer.Context,
    names: Names = None,
    lines: LogLines = None,
    follow: Follow = False,
    since: Since = None,
    as_json: Json = False,
) -> None:
    """Show servers' logs (their stderr and the shim's own lines, marked [mcpctl]), across rotations.

    With several servers, lines are interleaved by time and prefixed with the name. --json prints one
    JSON object per line: {"server", "time", "source": "server"|"mcpctl", "line"}.
    """
    from mcpctl import logfile

    g: Globals = ctx.obj
    t = g.target(names)
    paths = t.paths
    servers = [s.name for s in known_servers(paths, t.config, t.names, everything=False)]
    threshold = _since(since)
    count = backlog.count(lines, threshold, backlog.LOG_LINES)
    prefix = len(servers) > 1
    found = [
        (line.time or 0.0, name, line)
        for name in servers
        for line in logfile.tail(paths.log_file(name), -1 if count is None else count, threshold)
    ]
    found.sort(key=lambda item: item[0])
    for _ts, name, line in backlog.last(found, count):
        _print_line(name, line, prefix, as_json)
    if follow:
        followers = {name: logfile.Follower(paths.log_file(name)) for name in servers}
        _follow(followers, lambda name, raw: _print_line(name, logfile.parse(raw), prefix, as_json))


@app.command()
def events(
    ctx: typer.Context,
    names: Names = None,
    lines: EventLines = None,
    follow: Follow = False,
    since: Since = None,
    as_json: Json = False,
) -> None:
    """Show lifecycle events (started, ready, exited, backoff, restarted, failed, stopped, unhealthy,
    alerts, ...) from each server's events.jsonl, oldest first. --json prints one object a line: the event as
    stored, with its "server"."""
    from mcpctl.events import read_events
    from mcpctl.logfile import Follower

    g: Globals = ctx.obj
    t = g.target(names)
    paths = t.paths
    servers = [s.name for s in known_servers(paths, t.config, t.names, everything=False)]
    threshold = _since(since)
    found = [
        {"server": name, **event}
        for name in servers
        for event in read_events(paths.events_file(name))
        if threshold is None or float(event.get("ts", 0)) >= threshold
    ]
    found.sort(key=lambda event: float(event.get("ts", 0)))
    for event in backlog.last(found, backlog.count(lines, threshold, backlog.EVENT_LINES)):
        _print_event(event, as_json)
    if follow:
        followers = {name: Follower(paths.events_file(name)) for name in servers}
        _follow(followers, lambda name, raw: _print_raw_event(name, raw, as_json))


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    from mcpctl.metrics import NOT_A_DURATION, parse_duration

    try:
        return time.time() - parse_duration(text)
    except ValueError:
        raise UsageError(_(NOT_A_DURATION).format(text=text), _("for example --since 10m")) from None


def _follow(followers: dict[str, Any], emit: Callable[[str, str], None]) -> None:
    """Poll every follower until Ctrl-C (or a closed stdout): new lines are printed as they come."""
    try:
        while True:
            for name, follower in followers.items():
                for raw in _safe(follower.lines()):
                    emit(name, raw)
            sys.stdout.flush()
            time.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `mcpctl logs -f | head`
        pass
    finally:
        for follower in followers.values():
            follower.close()


def _safe(lines: Iterator[str]) -> Iterator[str]:
    try:
        yield from lines
    except OSError:
        return


def _print_line(name: str, line: Any, prefix: bool, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(line.to_json(name)) + "\n")
        return
    sys.stdout.write((f"{name} | " if prefix else "") + line.render() + "\n")


def _print_raw_event(name: str, raw: str, as_json: bool) -> None:
    try:
        event = json.loads(raw)
    except ValueError:
        return
    if isinstance(event, dict):
        _print_event({"server": name, **event}, as_json)


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(event) + "\n")
        return
    details = " ".join(
        f"{key}={_value(value)}" for key, value in event.items() if key not in ("server", "time", "ts", "mono", "event")
    )
    sys.stdout.write(f"{event.get('time', '?')} {event['server']} {event.get('event', '?')} {details}".rstrip() + "\n")


def _value(value: object) -> str:
    if isinstance(value, dict):
        return json.dumps(value.get("message", value)) if "message" in value else json.dumps(value)
    return str(value)
