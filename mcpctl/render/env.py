"""What `mcpctl env check` and `mcpctl env rules` show: where each variable comes from, and the rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcpctl.render.output import emit_json, say, table

if TYPE_CHECKING:
    from mcpctl.config.environment import Resolution


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
        say(f"{name}: {verdict}")
        rows = [[v.name, v.status, v.source, v.problem or ""] for v in resolution.variables]
        if rows:
            table(["  VARIABLE", "STATUS", "SOURCE", "PROBLEM"], [[f"  {r[0]}", *r[1:]] for r in rows])
        for problem in resolution.problems:
            if not any(problem.startswith(f"{v.name}:") for v in resolution.variables):
                say(f"  - {problem}")


def env_rules(rules: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json({"rules": rules})
        return
    if not rules:
        say("no rules (add one with `mcpctl env rule add NAME VAR --pattern REGEX`)")
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
