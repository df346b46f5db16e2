"""The config commands: `mcpctl apply` and `mcpctl config validate|history|diff|rollback|export|import`.

Each command parses, takes the config lock where it writes, calls the core
(apply, versions, importer, config_file) and renders (render_config); the core loads lazily.

No `from __future__ import annotations` here: typer reads every command's signature at every start
(for `--help` and `status` too) and string annotations cost it an eval each, ~2 ms for this module.
"""

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mcpctl.cli.app import Json, app
from mcpctl.constants import ENV_CONFIG, ExitCode
from mcpctl.i18n import _

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from mcpctl.cli.app import Globals
    from mcpctl.config.model import Config
    from mcpctl.paths import Paths

config_app = typer.Typer(
    help="Validate the config, see its applied versions and their differences, roll back, export and import.",
    no_args_is_help=True,
)
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")]
Note = Annotated[str, typer.Option("-m", "--message", help="Why: kept with the version in the history.")]


@app.command()
def apply(ctx: typer.Context, dry_run: DryRun = False, message: Note = "", as_json: Json = False) -> None:
    """Bring what runs in line with the config: start new servers, stop removed ones, restart changed ones,
    update health and alert settings in place; record the config as a version."""
    _apply(ctx.obj, dry_run, message, as_json)


def _apply(g: "Globals", dry_run: bool, message: str, as_json: bool) -> None:
    from mcpctl.config import history as versions
    from mcpctl.config.document import digest
    from mcpctl.control import apply as core
    from mcpctl.control.controller import Controller
    from mcpctl.render import config as render_config

    paths = g.paths()
    path, content, config = _current(g)
    with _config_lock(paths):
        last = versions.latest(paths)
        actions = core.plan(paths, config, last)
        if dry_run:
            render_config.plan(path, actions, last, as_json)
            return
        outcomes = core.carry_out(paths, config, actions, Controller(paths, config))
        failed = [o.action.name for o in outcomes if not o.ok]
        changed = last is None or last.hash != digest(content)
        version = versions.record(paths, config, content, message, failed) if changed else None
    render_config.applied(path, actions, outcomes, version, as_json)
    raise typer.Exit(core.exit_code(outcomes))


app.add_typer(config_app, name="config")


@config_app.command("validate")
def validate(ctx: typer.Context, as_json: Json = False) -> None:
    """Check the config with the same validation every command uses; list every problem at once."""
    from mcpctl.config.gateway import tls_problems
    from mcpctl.config.load import validate as validate_file
    from mcpctl.config.model import no_config_found
    from mcpctl.render import config as render_config

    g: Globals = ctx.obj
    path = g.find_config()
    if path is None:
        raise no_config_found()
    loaded, problems = validate_file(path)
    problems += tls_problems(loaded) if loaded is not None else []  # the files, which no other load reads
    loaded = None if problems else loaded
    render_config.validated(path, loaded, problems, as_json)
    if problems:
        raise typer.Exit(ExitCode.USAGE)


@config_app.command("history")
def history(ctx: typer.Context, as_json: Json = False) -> None:
    """Applied config versions, oldest first (the newest 50 are kept)."""
    from mcpctl.config import history as versions
    from mcpctl.config.document import digest, read_bytes
    from mcpctl.render import config as render_config

    g: Globals = ctx.obj
    path = _file(g)
    current = digest(read_bytes(path)) if path else None
    render_config.history(versions.listing(g.paths()), current, as_json)


@config_app.command("diff")
def diff(
    ctx: typer.Context,
    old: Annotated[str | None, typer.Argument(help="A version number, `last`, or `file`.")] = None,
    new: Annotated[str | None, typer.Argument(help="The same; default: the config file.")] = None,
    as_json: Json = False,
) -> None:
    """Differences per server and field, and in every other table and key, between two versions (default:
    the last applied and the file).

    Each change says what it needs: a restart, an update in place, a gateway restart, a new state dir, or
    nothing. Env values show as ***.
    """
    from mcpctl.config import impact
    from mcpctl.config.model import TOP_LEVEL
    from mcpctl.render import config as render_config

    g: Globals = ctx.obj
    paths = g.paths()
    (label_a, views_a, doc_a, id_a, unknown_a), (label_b, views_b, doc_b, id_b, unknown_b) = (
        _side(g, paths, old or "last"),
        _side(g, paths, new or "file"),
    )
    skipped = tuple(key for key in TOP_LEVEL if key in unknown_a or key in unknown_b)
    outside = impact.outside_changes(doc_a, doc_b, skipped)
    unknown = list(dict.fromkeys(side for side in ((id_a, unknown_a), (id_b, unknown_b)) if side[1]))
    render_config.diff((label_a, label_b), impact.compare(views_a, views_b), list(outside), unknown, as_json)


def _side(
    g: "Globals", paths: "Paths", ref: str
) -> tuple[str, dict[str, Any], dict[str, Any], int | None, tuple[str, ...]]:
    """A label, the views, the (sealed) document of a version or of the config file, the version's number
    (None: the file) and the top-level keys it never recorded (history.unrecorded)."""
    from mcpctl.config import history as versions
    from mcpctl.config.document import document

    if ref == "file":
        path, _content, config = _current(g)
        return _("file {path}").format(path=path), versions.views_of(paths, config), document(config), None, ()
    version = versions.get(paths, ref)
    when = _time_label(version.time)
    label = _('version {id} ({when} by {user}: "{note}")') if version.note else _("version {id} ({when} by {user})")
    label = label.format(id=version.id, when=when, user=version.user, note=version.note)
    return label, version.views, version.document, version.id, versions.unrecorded(version)


def _time_label(stamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


@config_app.command("rollback")
def rollback(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The version number to go back to (see `mcpctl config history`).")],
    then_apply: Annotated[bool, typer.Option("--apply", help="Apply it at once.")] = False,
    placeholders: Annotated[
        bool, typer.Option("--placeholders", help="Write ${VAR} for env values that are nowhere to be found.")
    ] = False,
    message: Note = "",
    as_json: Json = False,
) -> None:
    """Write an applied version back as the config file (the current one is kept as .bak).

    Secrets are not in the history: env values are taken from the current file or its backup.
    """
    from mcpctl.config import history as versions
    from mcpctl.config.document import dumps, writable, write_config
    from mcpctl.config.importer import to_config
    from mcpctl.render import config as render_config

    g: Globals = ctx.obj
    paths = g.paths()
    path, content, current = _current(g)
    writable(path)
    with _config_lock(paths):
        chosen = versions.get(paths, version)
        doc = versions.completed(chosen, _unsealed(paths, path, chosen.document, placeholders), current)
        to_config(doc, path)  # the one validator, before anything is written
        backup = write_config(paths, path, dumps(doc, "toml").encode(), content)
    if then_apply:
        _apply(g, False, message or f"rollback to version {chosen.id}", as_json)
        return
    if as_json:
        from mcpctl.render.output import emit_json

        emit_json({"config": str(path), "version": chosen.id, "backup": str(backup) if backup else None})
        return
    render_config.written(path, backup, _("wrote version {id} to").format(id=chosen.id))


def _unsealed(paths: "Paths", path: Path, sealed: dict[str, Any], placeholders: bool) -> dict[str, Any]:
    """The version's document with its secrets taken from the current file and its backup."""
    import re

    from mcpctl.config import history as versions
    from mcpctl.config import load as config
    from mcpctl.config import views as snapshot
    from mcpctl.config.document import document
    from mcpctl.errors import UsageError

    sources = []
    for candidate in (path, path.with_name(path.name + ".bak")):
        loaded, _ = config.validate(candidate) if candidate.exists() else (None, [])
        if loaded is not None:
            sources.append(document(loaded))
    doc, missing = snapshot.restore(sealed, sources, snapshot.secret_key(paths))
    if missing and placeholders and all(".env." in m for m in missing):
        for where in missing:
            server, var = re.fullmatch(r"servers\.(.+)\.env\.(.+)", where).groups()  # type: ignore[union-attr]
            doc["servers"][server]["env"][var] = f"${{{var}}}"
        missing = []
    if missing:
        raise UsageError(versions.UNSTORED.format(path=path, missing=", ".join(missing)), versions.UNSTORED_HINT)
    return doc


class Format(StrEnum):  # a choice, so that the shells complete it (config/document.FORMATS)
    toml = "toml"
    json = "json"


@config_app.command("export")
def export(
    ctx: typer.Context,
    fmt: Annotated[Format | None, typer.Option("--format", help="toml or json (default: from -o, else toml).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to this file (else stdout).")] = None,
) -> None:
    """Write the current config as TOML or JSON ({"mcpServers": ...}); `${VAR}` references stay as written."""
    import sys

    from mcpctl.config.document import document, dumps, format_for, write_file
    from mcpctl.config.importer import rebase

    g: Globals = ctx.obj
    config = _current(g)[2]
    doc = document(config)
    if output is None:
        sys.stdout.write(dumps(doc, format_for(None, fmt.value if fmt else None)))
        return
    text = dumps(rebase(doc, config.base_dir, output.absolute().parent), format_for(output, fmt.value if fmt else None))
    write_file(output, text.encode())
    sys.stderr.write(_("wrote {path}").format(path=output) + "\n")


@config_app.command("import")
def import_(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Argument(help="TOML, or JSON with mcpServers (Claude, Cursor) or servers (VS Code).")
    ],
    replace: Annotated[
        bool, typer.Option("--replace/--merge", help="Replace every server, or merge: add and change (default).")
    ] = False,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Add (or change) the servers and tables of another config file in mcpctl.toml, written as TOML."""
    from mcpctl.clients import mcpctl_toml
    from mcpctl.config import history as versions
    from mcpctl.config import impact, importer
    from mcpctl.config.document import document, read_bytes, writable, write_config
    from mcpctl.render import config as render_config

    g: Globals = ctx.obj
    paths = g.paths()
    target = _target(g)
    writable(target)
    content = read_bytes(target)
    current = _parsed(target, content) if content is not None else None
    incoming = importer.read(source, target.absolute().parent)
    before = document(current) if current else None
    after = importer.combine(before, incoming.document, replace)
    new_config = importer.to_config(after, target)
    old_views = versions.views_of(paths, current) if current else {}
    changes = impact.compare(old_views, versions.views_of(paths, new_config))
    outside = impact.outside_changes(before or {}, document(new_config))
    touched = {c.name for c in changes}
    had, has = (before or {}).get("servers", {}), after["servers"]
    untouched = [name for name in incoming.document["servers"] if name not in touched]
    # A disabled server has no view, so no change is found in it: one written or changed so is said apart.
    dormant = [n for n in untouched if has.get(n, {}).get("enabled") is False and had.get(n) != has.get(n)]
    unchanged = [name for name in untouched if name not in dormant]
    render_config.imported(
        source, target, changes, list(outside), (unchanged, dormant), incoming.notes, dry_run, as_json
    )
    if dry_run or after == (before or {"servers": {}}):
        return
    with _config_lock(paths):
        data = mcpctl_toml.imported(target, content, before or {"servers": {}}, after)  # comments kept
        backup = write_config(paths, target, data, content)
    if not as_json:
        render_config.written(target, backup, _("wrote"))


# -- helpers --------------------------------------------------------------------------------------


def _current(g: "Globals") -> tuple[Path, bytes, "Config"]:
    """The project's config file (`_file`), its bytes, and the config parsed from exactly those bytes."""
    from mcpctl.config.document import read_bytes
    from mcpctl.config.model import no_config_found

    path = _file(g)
    content = read_bytes(path) if path else None
    if path is None or content is None:
        raise no_config_found()
    return path, content, _parsed(path, content)


def _file(g: "Globals") -> Path | None:
    """The config file of the project the command acts on. With --project naming another project than the
    found file's, the file that project's records name, as `list` and `restart` take it: this directory's
    file never reaches another project's servers. A project with no record (its servers never ran, or the
    file's `project` was just renamed from it) has only the found file to compare or apply."""
    if g.project is None:
        return g.find_config()
    return g.target().config.path or g.find_config()


def _parsed(path: Path, content: bytes) -> "Config":
    from mcpctl.config.load import parse
    from mcpctl.config.model import config_error

    loaded, problems = parse(content.decode("utf-8", errors="replace"), path)
    if problems:
        raise config_error(problems)
    assert loaded is not None
    return loaded


def _target(g: "Globals") -> Path:
    """Where import writes: -f, $MCPCTL_CONFIG, the config found upward, else ./mcpctl.toml."""
    from mcpctl.constants import CONFIG_FILENAME
    from mcpctl.paths import find_config

    chosen = g.config or os.environ.get(ENV_CONFIG)
    if chosen:
        return Path(chosen).expanduser()
    return find_config(None) or Path.cwd() / CONFIG_FILENAME


def _config_lock(paths: "Paths") -> "AbstractContextManager[None]":
    from mcpctl.control.controller import lock_timeout
    from mcpctl.state import state_lock

    paths.ensure_config()
    return state_lock(paths.config_lock, lock_timeout())
