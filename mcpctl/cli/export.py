"""`mcpctl export systemd|kubernetes|compose`: the config, for the engines a user already runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import All, Globals, Names, app, require_names
from mcpctl.errors import UsageError
from mcpctl.i18n import _

if TYPE_CHECKING:
    from mcpctl.export.needs import Needs

export = typer.Typer(
    help="Write systemd units, Kubernetes manifests or a Compose file for servers.", no_args_is_help=True
)
app.add_typer(export, name="export")

Image = Annotated[str | None, typer.Option("--image", help="Container image (default: localhost/mcpctl:latest).")]


@export.command()
def systemd(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    out: Annotated[str | None, typer.Option("-o", "--output", help="Directory for the units (else stdout).")] = None,
    user: Annotated[bool, typer.Option("--user", help="User units (the default).")] = False,
    system: Annotated[bool, typer.Option("--system", help="System units (WantedBy=multi-user.target).")] = False,
) -> None:
    """One Type=notify unit per server, running `mcpctl run NAME`; secrets by EnvironmentFile, never inline."""
    from mcpctl.export.needs import mcpctl_command
    from mcpctl.export.systemd import unit

    if user and system:
        raise UsageError(_("--user and --system exclude each other"))
    g: Globals = ctx.obj
    found, config_path = _needs(g, names, everything)
    units = [unit(n, mcpctl_command(), config_path, g.paths().home.absolute(), system) for n in found]
    _write(out, {u.filename: u.text for u in units}, directory=True)


@export.command()
def kubernetes(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    out: Annotated[str | None, typer.Option("-o", "--output", help="File for the manifests (else stdout).")] = None,
    image: Image = None,
    namespace: Annotated[str | None, typer.Option("--namespace", help="metadata.namespace of every object.")] = None,
) -> None:
    """A Deployment per server, a Secret of placeholders for what it needs, probes by `mcpctl check`."""
    from mcpctl.export.kubernetes import manifests
    from mcpctl.export.needs import DEFAULT_IMAGE

    found, _ = _needs(ctx.obj, names, everything)
    text = "".join(manifests(n, image or DEFAULT_IMAGE, namespace) for n in found)
    _write(out, {"": text}, directory=False)


@export.command()
def compose(
    ctx: typer.Context,
    names: Names = None,
    everything: All = False,
    out: Annotated[str | None, typer.Option("-o", "--output", help="File for the Compose file (else stdout).")] = None,
    image: Image = None,
) -> None:
    """A Compose file: a service per server, secrets as ${VAR} references, healthchecks by `mcpctl check`."""
    from mcpctl.export.compose import compose as generate
    from mcpctl.export.needs import DEFAULT_IMAGE

    found, _ = _needs(ctx.obj, names, everything)
    _write(out, {"": generate(found, image or DEFAULT_IMAGE)}, directory=False)


def _needs(g: Globals, names: list[str] | None, everything: bool) -> tuple[list[Needs], Path]:
    from mcpctl.config import env_rules
    from mcpctl.export.needs import needs_of

    require_names(names, everything)
    t = g.target(names, required=True)  # PROJECT/NAME: that project's config, as every command takes it
    config = t.config
    assert config.path is not None  # required=True: a config file was found
    saved = env_rules.stored(t.paths)
    servers = config.select(t.names or [], everything)
    rules = {s.name: [r.var for r in env_rules.rules_for(s, config, saved) if r.required] for s in servers}
    return [needs_of(config, s, rules[s.name]) for s in servers], config.path.absolute()


def _write(out: str | None, files: dict[str, str], directory: bool) -> None:
    if out is None:
        typer.echo("".join(files.values()), nl=False)
        return
    target = Path(out)
    try:
        if directory:
            target.mkdir(parents=True, exist_ok=True)
        for filename, text in files.items():
            path = target / filename if directory else target
            path.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {path}", err=True)
    except OSError as exc:
        raise UsageError(f"-o {out}: {exc.strerror}", _("name a path you can write")) from None
