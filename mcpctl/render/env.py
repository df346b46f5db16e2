"""What `mcpctl env check` and `mcpctl env rules` show: where each variable comes from, and the rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcpctl.i18n import N_, _, translate
from mcpctl.render.output import emit_json, say, table

if TYPE_CHECKING:
    from mcpctl.config.environment import Resolution


YES, NO = N_("yes"), N_("no")


def env_check(reports: list[tuple[str, Resolution]], as_json: bool) -> None:
    from mcpctl.config.environment import KNOWN

    if as_json:
        servers = [
            {"name": name, "ok": r.ok, "problems": r.problems, "variables": [v.to_json() for v in r.variables]}
            for name, r in reports
        ]
        emit_json({"servers": servers})
        return
    for name, resolution in reports:
        verdict = _("ok") if resolution.ok else _("{count} problem(s)").format(count=len(resolution.problems))
        say(f"{name}: {verdict}")
        rows = [[v.name, _(v.status), v.source, translate(v.problem or "", KNOWN)] for v in resolution.variables]
        if rows:
            table(["  VARIABLE", "STATUS", "SOURCE", "PROBLEM"], [[f"  {r[0]}", *r[1:]] for r in rows])
        for problem in resolution.problems:
            if not any(problem.startswith(f"{v.name}:") for v in resolution.variables):
                say(f"  - {translate(problem, KNOWN)}")


def env_rules(rules: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"rules": rules})
        return
    if not rules:
        say(_("no rules (add one with `mcpctl env rule add NAME VAR --pattern REGEX`)"))
        return
    rows = [
        [
            str(r.get("server", "")),
            str(r["var"]),
            _(YES) if r.get("required", True) else _(NO),
            _(YES) if r.get("non_empty") else _(NO),
            str(r.get("min_length") or "-"),
            str(r.get("pattern") or "-"),
            str(r.get("origin", "mcpctl env rule")),
        ]
        for r in rules
    ]
    table(["SERVER", "VARIABLE", "REQUIRED", "NON-EMPTY", "MIN-LENGTH", "PATTERN", "FROM"], rows)
