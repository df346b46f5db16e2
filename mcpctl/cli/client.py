"""The client commands: `mcpctl client list|setup|restore|status`, which wire MCP clients (Claude, Cursor,
VS Code, ...) to mcpctl by rewriting their config files' server entries to run `mcpctl connect`.

No `from __future__ import annotations` here: typer reads every command's signature at every start.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import Json, app
from mcpctl.constants import ENV_CONFIG
from mcpctl.errors import MCPCtlError

if TYPE_CHECKING:
    from mcpctl.cli.app import Globals

client_app = typer.Typer(
    help="Find MCP clients' config files and route their servers through mcpctl (setup, restore, status).",
    no_args_is_help=True,
)
app.add_typer(client_app, name="client")

ClientId = Annotated[
    str, typer.Argument(help="claude-desktop, claude-code, cursor, vscode, windsurf, codex or gemini.")
]


@client_app.command("list")
def list_(ctx: typer.Context, as_json: Json = False) -> None:
    """The clients found here, their config files, how many servers each has and how many go through mcpctl."""
    from mcpctl.clients import report
    from mcpctl.render import clients as render

    g: Globals = ctx.obj
    render.listing(report.listing(Path.cwd(), g.trust), as_json)


@client_app.command("setup")
def setup(
    ctx: typer.Context,
    client: ClientId,
    servers: Annotated[
        str | None, typer.Option("--servers", help="Only these servers of the client, comma-separated.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the diff; write nothing.")] = False,
    as_json: Json = False,
) -> None:
    """Import the client's servers into the mcpctl config and rewrite its entries to run `mcpctl connect NAME`
    (a diff first; a backup of each file; every other key and comment kept)."""
    import sys

    from mcpctl.cli.config import _config_lock
    from mcpctl.clients import registry
    from mcpctl.clients import setup as core
    from mcpctl.render import clients as render

    g: Globals = ctx.obj
    only = [name.strip() for name in servers.split(",") if name.strip()] if servers else None
    target = _target(g)
    plan = core.plan(registry.client(client), Path.cwd(), target, _home_flag(g), only, g.trust)
    render.planned(plan, dry_run, as_json)
    sys.stdout.flush()  # the diff is out before the lock is waited for
    if dry_run:
        return
    if not plan.changes():
        render.set_up(core.Outcome(plan, None), as_json)  # nothing to write: --json still says so
        return
    # The lock and history of the project whose config is written: with none found, the user's one to be
    # (its own project), not the project the working directory would name.
    paths = g.paths() if target.exists() else g.paths_of(target)
    with _config_lock(paths):
        outcome = core.carry_out(paths, plan)
    render.set_up(outcome, as_json)


@client_app.command("restore")
def restore(
    ctx: typer.Context,
    client: ClientId,
    listing: Annotated[bool, typer.Option("--list", help="List the client's backups, oldest first.")] = False,
    backup: Annotated[
        str | None, typer.Option("--backup", help="Which backup (a stamp from --list; default: the newest).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Put back the client's files as they were before a setup, byte for byte."""
    from mcpctl.cli.config import _config_lock
    from mcpctl.clients import registry, store
    from mcpctl.clients import restore as core
    from mcpctl.render import clients as render

    g: Globals = ctx.obj
    paths = g.paths()
    chosen = registry.client(client)
    if listing:
        render.backups(chosen, store.backups(paths, chosen.id), as_json)
        return
    with _config_lock(paths):
        restored = core.restore(paths, store.chosen_backup(paths, chosen.id, backup))
    render.restored(restored, as_json)


@client_app.command("status")
def status(
    ctx: typer.Context,
    client: Annotated[str | None, typer.Argument(help="One client (default: every one).")] = None,
    as_json: Json = False,
) -> None:
    """Each entry of the clients' files: through mcpctl, direct, or changed by hand since setup (drift)."""
    from mcpctl.clients import registry, report
    from mcpctl.render import clients as render

    g: Globals = ctx.obj
    chosen = [registry.client(client)] if client else list(registry.CLIENTS)
    render.status(report.status(g.paths(), chosen, Path.cwd(), g.trust), as_json)


def _target(g: "Globals") -> Path:
    """The mcpctl config the entries will name: -f, $MCPCTL_CONFIG, the one found, else the user's."""
    from mcpctl.constants import CONFIG_FILENAME
    from mcpctl.paths import find_config, user_config_dir

    chosen = g.config or os.environ.get(ENV_CONFIG)
    if chosen:
        return Path(chosen).expanduser().absolute()
    found = find_config(None)
    if found is not None:
        return found.absolute()
    return user_config_dir() / CONFIG_FILENAME


def _home_flag(g: "Globals") -> Path | None:
    """The state dir, for the entries' --home, when it is not the default one."""
    from mcpctl.paths import chosen_home, default_home

    home = chosen_home(g.home)
    if home is None:
        try:
            home = g.load_config(required=False).home
        except MCPCtlError:
            home = None  # a broken config says nothing of its home
    return None if home is None or home == default_home() else home
