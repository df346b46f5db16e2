"""How the gateway's commands show what they did: `gateway start|stop|status` and `token ...`."""

from __future__ import annotations

import time
from typing import Any

from mcpctl.render.output import duration, emit_json, say, table

_SAID = {
    "started": "gateway started: {url} (pid {pid})",
    "running": "gateway already running: {url} (pid {pid})",
    "stopped": "gateway stopped",
    "not_running": "gateway was not running",
}


def outcome(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json({"gateway": result})
        return
    say(_SAID[result["outcome"]].format(url=result.get("url", "?"), pid=result.get("pid")))


def status(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json({"gateway": result})
        return
    if not result["running"]:
        say("gateway: stopped")
        return
    since = time.time() - float(result.get("ready_at") or result.get("started_at") or time.time())
    say(f"gateway: {result['state']} on {result.get('url')} (pid {result['pid']}, up {duration(since)})")


def created(token: dict[str, Any], secret: str, as_json: bool) -> None:
    if as_json:
        emit_json({"token": token, "secret": secret})
        return
    say(secret)


def tokens(found: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"tokens": found})
        return
    rows = [[t["name"], t["id"], _scope(t), t["state"], _when(t.get("expires_at"))] for t in found]
    table(["NAME", "ID", "SCOPE", "STATE", "EXPIRES"], rows)


def revoked(names: list[str], as_json: bool) -> None:
    if as_json:
        emit_json({"revoked": names})
        return
    say(f"revoked {', '.join(names)}")


def _scope(token: dict[str, Any]) -> str:
    if token.get("group"):
        return f"group {token['group']}"
    if token.get("servers"):
        return ",".join(token["servers"])
    return "all"


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "never"
