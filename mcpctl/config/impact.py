"""Which settings changed between two configs, and what each change needs.

Per server (between two sets of views): a restart of the server, an update of its shim in place, or
nothing (settings read by each command). Outside the servers (between two documents, every other
top-level key): the global [env_rules] (read by each command) and [alerts] (sent to the running shims)
as a server's own; [gateway] and [groups.*], read by the gateway process once, as it starts; `project`
and `home`, which choose the state dir the config's servers live in.

Values that are secrets are sealed in the views (see views.py) and shown here only as `***`; the
tables outside the servers hold none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from mcpctl.config.document import MERGE, NAMED
from mcpctl.config.model import TOP_LEVEL, GatewayConfig
from mcpctl.config.views import NO_EFFECT, RESTART, UPDATE, impact, is_sealed, plain
from mcpctl.lean import Record, dataclass

HIDDEN = "***"
# Settings compared entry by entry (env.TOKEN, alerts.high_cpu), so a change names what it touched.
_BY_ENTRY = frozenset({"env", "alerts", "env_file_contents", "env_rules"})
_STRENGTH: dict[str, int] = {NO_EFFECT: 0, UPDATE: 1, RESTART: 2}
# What a change outside the servers needs, besides a setting's own impact.
GATEWAY = "gateway"  # the gateway reads [gateway] and [groups.*] as it starts: a gateway restart takes it
STATE_DIR = "state_dir"  # `project`, `home`: another state dir holds the servers from now on
_OUTSIDE = tuple(key for key in TOP_LEVEL if key != "servers")
_IMPACT = {"project": STATE_DIR, "home": STATE_DIR, "gateway": GATEWAY, "groups": GATEWAY}


@dataclass(frozen=True)
class FieldChange(Record):
    """One setting that changed, and what applying it takes."""

    field: str  # "args", "env.TOKEN", "alerts.high_cpu", "env_file_contents./path/a.env"; "gateway.listen", "groups.G"
    before: Any  # None: not set
    after: Any
    impact: str  # restart | update | none; outside the servers also gateway | state_dir

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


def outside_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], skipped: tuple[str, ...] = ()
) -> tuple[FieldChange, ...]:
    """What differs between two documents outside [servers.*], in model.TOP_LEVEL's order: `project` and
    `home` whole, [gateway] field by field (a table added or removed whole), the others entry by entry
    (`alerts.NAME`, `groups.NAME`), sorted by name. The keys in `skipped` (not recorded) are left out."""
    found: list[FieldChange] = []
    for key in _OUTSIDE:
        if key in skipped:
            continue
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        need = _IMPACT.get(key) or impact(key)
        if MERGE[key] == NAMED:  # tables of NAME -> table: entry by entry
            old, new = old or {}, new or {}
            names = sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))
            found += [FieldChange(f"{key}.{name}", old.get(name), new.get(name), need) for name in names]
        elif key == "gateway" and old is not None and new is not None:
            old, new = _with_defaults(old), _with_defaults(new)
            found += [FieldChange(f"gateway.{f}", old[f], new[f], need) for f in old if old[f] != new[f]]
        else:  # project, home; a [gateway] added or removed
            found.append(FieldChange(key, old, new, need))
    return tuple(found)


def _with_defaults(table: Mapping[str, Any]) -> dict[str, Any]:
    """A [gateway] table as a document holds it (defaults left out), with every field's value."""
    defaults = GatewayConfig()
    return {**{spec.name: plain(getattr(defaults, spec.name)) for spec in fields(defaults)}, **table}


def shown(value: Any) -> Any:
    """A value as it may be shown: every sealed secret becomes ***."""
    if is_sealed(value):
        return HIDDEN
    if isinstance(value, list):
        return [shown(v) for v in value]
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    return value
