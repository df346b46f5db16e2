"""`mcpctl init`: write a commented starter mcpctl.toml, or convert a client's JSON config into one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import Globals, Json, app
from mcpctl.constants import CONFIG_FILENAME
from mcpctl.errors import MCPCtlError, StateDirError, UsageError
from mcpctl.i18n import _

if TYPE_CHECKING:
    from mcpctl.config.template import Converted


@app.command()
def init(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            help=f"Where to write it (default: the -f path, else ./{CONFIG_FILENAME}; in a folder, {CONFIG_FILENAME}).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    source: Annotated[
        Path | None,
        typer.Option("--from", help='Convert a client\'s JSON config ({"mcpServers": ...} or {"servers": ...}).'),
    ] = None,
    as_json: Json = False,
) -> None:
    """Write a commented starter mcpctl.toml (or one converted from a client's JSON with --from)."""
    from mcpctl.config import template as starter

    g: Globals = ctx.obj
    target = _target(path, g.config)
    if target.exists() and not force:
        raise UsageError(
            _("{path} already exists").format(path=target), _("pass --force to overwrite it, or name another PATH")
        )
    import shutil

    converted = starter.starter(shutil.which) if source is None else starter.convert(source, target)
    _write(target, converted.text)
    _report(target, converted, source, as_json)


def _target(path: Path | None, config: str | None) -> Path:
    """PATH, else the global -f, else ./mcpctl.toml; a folder gets mcpctl.toml inside it."""
    target = (path or Path(config or CONFIG_FILENAME)).expanduser()
    return target / CONFIG_FILENAME if target.is_dir() else target


def _write(target: Path, text: str) -> None:
    from mcpctl.state import write_atomic

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text.encode())
    except (OSError, StateDirError) as exc:
        failed = _("cannot write {path}: {error}")
        message = exc.message if isinstance(exc, MCPCtlError) else failed.format(path=target, error=exc.strerror)
        raise UsageError(message, _("name a PATH in a folder you can write to")) from None


def _report(target: Path, converted: Converted, source: Path | None, as_json: bool) -> None:
    import sys

    from mcpctl.config.importer import NOTES  # loaded already: the conversion made the notes
    from mcpctl.i18n import kept
    from mcpctl.render import output as render

    literal = _(
        '{name}: env {names} written as in {source} (a secret is better kept out of the file as a "${{VAR}}" reference)'
    )
    notes = [literal.format(name=n, names=", ".join(v), source=source) for n, v in converted.literal_env.items()]
    for note in [*notes, *(kept(n, NOTES) for n in converted.notes)]:
        sys.stderr.write(_("note: {text}").format(text=note) + "\n")
    servers = converted.servers
    if as_json:
        render.emit_json({"path": str(target), "servers": servers, "from": str(source) if source else None})
        return
    listed = f" ({', '.join(servers)})" if servers else ""
    wrote = _("wrote {path} with {count} server(s){listed}")
    sys.stdout.write(wrote.format(path=target, count=len(servers), listed=listed) + "\n")
    sys.stdout.write(_("next: {command}").format(command=_start_command(target)) + "\n")


def _start_command(target: Path) -> str:
    """How to start what was written: `-f` only when mcpctl would not find the file by itself."""
    from mcpctl.paths import find_config

    try:
        found = find_config()
    except MCPCtlError:
        found = None
    same = found is not None and found.resolve() == target.resolve()
    return "mcpctl start --all" if same else f"mcpctl -f {target} start --all"
