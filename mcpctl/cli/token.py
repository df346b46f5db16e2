"""`mcpctl token create|list|revoke`: the gateway's bearer tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import Globals, Json, app
from mcpctl.errors import UsageError
from mcpctl.i18n import _

if TYPE_CHECKING:
    from mcpctl.gateway.tokens import TokenStore

token_app = typer.Typer(help="Bearer tokens of the HTTP gateway.", no_args_is_help=True)
app.add_typer(token_app, name="token")

Name = Annotated[str, typer.Argument(help="The token's name or id.", show_default=False)]


def _store(g: Globals) -> TokenStore:
    from mcpctl.gateway.tokens import TokenStore

    paths = g.paths()
    paths.ensure_gateway()
    return TokenStore(paths.gateway_file("tokens.json"))


@token_app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    servers: Annotated[str | None, typer.Option("--servers", help="Only these servers (a,b).")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only this [groups.GROUP].")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime such as 30d, 12h, 90m.")] = None,
    as_json: Json = False,
) -> None:
    """Create a token and print it once (only its salted hash is kept)."""
    from mcpctl.gateway.tokens import parse_duration
    from mcpctl.render import gateway as render

    g: Globals = ctx.obj
    if servers is not None and group is not None:
        raise UsageError(
            _("--servers and --group exclude each other"), _("a token is scoped to servers or to one group")
        )
    config = g.load_config(required=False)
    chosen = tuple(s.strip() for s in servers.split(",") if s.strip()) if servers is not None else None
    if chosen is not None:
        config.select(list(chosen), False)  # an unknown name is an error naming the config
    if group is not None and group not in config.groups:
        raise UsageError(
            _("unknown group {group!r} (not in {path})").format(group=group, path=config.path),
            _("groups are [groups.NAME] tables"),
        )
    seconds = parse_duration(expires) if expires is not None else None
    store = _store(g)
    token, secret = store.create(name, chosen, group, seconds)
    render.created(token.public(), secret, as_json)


@token_app.command("list")
def list_tokens(ctx: typer.Context, as_json: Json = False) -> None:
    """List the tokens: name, id, scope, state (active, expired, revoked) and expiry."""
    from mcpctl.render import gateway as render

    store = _store(ctx.obj)
    render.tokens([t.public() for t in store.load().values()], as_json)


@token_app.command("revoke")
def revoke(ctx: typer.Context, name: Name, as_json: Json = False) -> None:
    """Revoke a token by name or id; the gateway refuses it from the next request on."""
    from mcpctl.render import gateway as render

    store = _store(ctx.obj)
    hits = store.revoke(name)
    if not hits:
        raise UsageError(_("no active token named {name!r}").format(name=name), _("see `mcpctl token list`"))
    render.revoked([t.name for t in hits], as_json)
