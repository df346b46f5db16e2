"""Which settings changed between two sets of views, and what each change needs: a restart of the
server, an update of its shim in place, or nothing (settings read by each command).

Values that are secrets are sealed in the views (see views.py) and shown here only as `***`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcpctl.config.views import NO_EFFECT, RESTART, UPDATE, impact, is_sealed
from mcpctl.lean import Record, dataclass

HIDDEN = "***"
# Settings compared entry by entry (env.TOKEN, alerts.high_cpu), so a change names what it touched.
_BY_ENTRY = frozenset({"env", "alerts", "env_file_contents", "env_rules"})
_STRENGTH: dict[str, int] = {NO_EFFECT: 0, UPDATE: 1, RESTART: 2}


@dataclass(frozen=True)
class FieldChange(Record):
    """One setting that changed, and what applying it takes."""

    field: str  # "args", "env.TOKEN", "alerts.high_cpu", "env_file_contents./path/a.env"
    before: Any  # None: not set
    after: Any
    impact: str  # restart | update | none

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "from": shown(self.before), "to": shown(self.after), "impact": self.impact}


@dataclass(frozen=True)
class ServerChange(Record):
    """A server added, removed or changed between two configs."""

    name: str
    kind: str  # added | removed | changed
    fields: tuple[FieldChange, ...] = ()

    @property
    def impact(self) -> str:
        """What the whole change needs: start, stop, or the strongest need of its fields."""
        if self.kind != "changed":
            return "start" if self.kind == "added" else "stop"
        return max((f.impact for f in self.fields), key=_STRENGTH.__getitem__, default=NO_EFFECT)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "change": self.kind,
            "impact": self.impact,
            "fields": [f.to_json() for f in self.fields],
        }


def compare(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]) -> list[ServerChange]:
    """Per server (sorted by name): added, removed, or changed with the fields that changed."""
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            changes.append(ServerChange(name, "added"))
        elif name not in after:
            changes.append(ServerChange(name, "removed"))
        elif found := field_changes(before[name], after[name]):
            changes.append(ServerChange(name, "changed", found))
    return changes


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """The settings that differ between two views of one server, in the views' order."""
    found = []
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        if field in _BY_ENTRY and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            old, new = old or {}, new or {}
            for key in dict.fromkeys([*old, *new]):
                if old.get(key) != new.get(key):
                    found.append(FieldChange(f"{field}.{key}", old.get(key), new.get(key), impact(field)))
        else:
            found.append(FieldChange(field, old, new, impact(field)))
    return tuple(found)


def shown(value: Any) -> Any:
    """A value as it may be shown: every sealed secret becomes ***."""
    if is_sealed(value):
        return HIDDEN
    if isinstance(value, list):
        return [shown(v) for v in value]
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    return value
