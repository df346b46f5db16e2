"""How the gateway's commands show what they did: `gateway start|stop|status` and `token ...`."""

from __future__ import annotations

import time
from typing import Any

from mcpctl.i18n import N_, _
from mcpctl.render.output import duration, emit_json, say, table

_SAID = {
    "started": N_("gateway started: {url} (pid {pid})"),
    "running": N_("gateway already running: {url} (pid {pid})"),
    "stopped": N_("gateway stopped"),
    "not_running": N_("gateway was not running"),
}
TOKEN_STATES = (N_("active"), N_("revoked"), N_("expired"))  # gateway/tokens.py's, shown translated


def outcome(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json({"gateway": result})
        return
    say(_(_SAID[result["outcome"]]).format(url=result.get("url", "?"), pid=result.get("pid")))


def status(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json({"gateway": result})
        return
    if not result["running"]:
        say(_("gateway: stopped"))
        return
    since = time.time() - float(result.get("ready_at") or result.get("started_at") or time.time())
    line = _("gateway: {state} on {url} (pid {pid}, up {uptime})")
    say(line.format(state=_(result["state"]), url=result.get("url"), pid=result["pid"], uptime=duration(since)))


def created(token: dict[str, Any], secret: str, as_json: bool) -> None:
    if as_json:
        emit_json({"token": token, "secret": secret})
        return
    say(secret)


def tokens(found: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"tokens": found})
        return
    rows = [[t["name"], t["id"], _scope(t), _(t["state"]), _when(t.get("expires_at"))] for t in found]
    table(["NAME", "ID", "SCOPE", "STATE", "EXPIRES"], rows)


def revoked(names: list[str], as_json: bool) -> None:
    if as_json:
        emit_json({"revoked": names})
        return
    say(_("revoked {names}").format(names=", ".join(names)))


def _scope(token: dict[str, Any]) -> str:
    if token.get("group"):
        return _("group {group}").format(group=token["group"])
    if token.get("servers"):
        return ",".join(token["servers"])
    return _("all")


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else _("never")
