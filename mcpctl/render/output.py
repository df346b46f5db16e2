"""The primitives every view uses: JSON on stdout, errors on stderr, tables (rich on a terminal), units.

The render package is the only one that imports rich, and only when a table reaches a terminal.
"""

from __future__ import annotations

import json
import os
import sys

from mcpctl import i18n
from mcpctl.constants import JSON_SCHEMA
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.i18n import _

if TYPE_CHECKING:
    from mcpctl.errors import MCPCtlError


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"schema": JSON_SCHEMA, **payload}, indent=2) + "\n")


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def error(exc: MCPCtlError, as_json: bool) -> None:
    if as_json:
        emit_json({"error": exc.to_json()})
    known = _known(exc)
    message, hint = i18n.failure_text(exc.type, exc.message, exc.hint, known)
    lines = [i18n.translate(line, known) for line in exc.details] or [message]
    out = sys.stderr
    for line in lines:
        out.write(_("error: {line}").format(line=line) + "\n")
    if hint:
        out.write(hint_line(hint) + "\n")


# The modules whose KNOWN templates the texts of an error type are made of (its {detail}, its lines).
_DETAILS = {
    "config_invalid": ("mcpctl.config.trust", "mcpctl.config.load"),  # trust first: its refusals name a path
    "internal": ("mcpctl.privdir",),  # StateDirError's refusals
    "server_running": ("mcpctl.control.forget",),
    "usage": (
        "mcpctl.config.document",
        "mcpctl.config.history",
        "mcpctl.config.importer",
        "mcpctl.config.template",
        "mcpctl.control.projects",
        "mcpctl.control.toolcall",
        "mcpctl.clients.registry",
        "mcpctl.clients.restore",
        "mcpctl.clients.setup",
        "mcpctl.clients.store",
        "mcpctl.gateway.tokens",
    ),
}


def _known(exc: MCPCtlError) -> tuple[str, ...]:
    """The templates an error's texts are made of, for `translate` (imported only to show one translated)."""
    modules = _DETAILS.get(exc.type, ())
    if i18n.language() == i18n.ENGLISH:
        return ()
    import importlib

    return tuple(template for module in modules for template in importlib.import_module(module).KNOWN)


def hint_line(hint: str) -> str:
    return _("hint: {hint}").format(hint=hint)


def table(header: list[str], rows: list[list[str]], styles: dict[int, dict[str, str]] | None = None) -> None:
    """Aligned columns (by display width: a CJK character takes two); coloured through rich only on a
    terminal (and never under NO_COLOR). The header's words are msgids: they are shown translated."""
    header = [_(word) for word in header]
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        _rich_table(header, rows, styles or {})
        return
    widths = [max(i18n.cells(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [i18n.pad(cell, width) for cell, width in zip(row, widths, strict=False)]
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
    console().print(grid)


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


def megabytes(count: int) -> str:
    return f"{count / 1024 / 1024:.1f}M"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
