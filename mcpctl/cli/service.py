"""`mcpctl service install|uninstall|status`: run `mcpctl resume` at login (systemd user unit, launchd agent)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcpctl.cli.app import Globals, Json, app
from mcpctl.errors import MCPCtlError

if TYPE_CHECKING:
    from mcpctl.export.service import ServiceFile

service = typer.Typer(help="A login service that runs `mcpctl resume` (systemd user unit, launchd agent).",
                      no_args_is_help=True)  # fmt: skip
app.add_typer(service, name="service")

DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would be written and run; change nothing.")]


@service.command()
def install(ctx: typer.Context, dry_run: DryRun = False, as_json: Json = False) -> None:
    """Write the service file and enable it (`systemctl --user enable`, `launchctl load`) where that exists."""
    found = _service_file(ctx.obj)
    ran = [] if dry_run else _install(found)
    _show("install", found, dry_run, ran, as_json, found.enable)


@service.command()
def uninstall(ctx: typer.Context, dry_run: DryRun = False, as_json: Json = False) -> None:
    """Disable the service and remove its file (a missing one is not an error)."""
    found = _service_file(ctx.obj)
    ran = [] if dry_run else _uninstall(found)
    _show("uninstall", found, dry_run, ran, as_json, found.disable)


@service.command()
def status(ctx: typer.Context, as_json: Json = False) -> None:
    """Whether the service file is installed, and whether it is the one `install` would write now."""
    found = _service_file(ctx.obj)
    current = found.path.read_text(encoding="utf-8") if found.path.exists() else None
    info = {"kind": found.kind, "path": str(found.path), "installed": current is not None,
            "up_to_date": current == found.text}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(info))
        return
    where = f"{found.kind} {found.path}"
    state = "not installed" if current is None else "installed" + ("" if info["up_to_date"] else " (out of date)")
    typer.echo(f"{where}: {state}")


def _service_file(g: Globals) -> ServiceFile:
    from mcpctl.export.needs import mcpctl_command
    from mcpctl.export.service import service_file

    config = g.load_config()
    assert config.path is not None
    argv = [*mcpctl_command(), "-f", str(config.path.absolute()), "--home", str(g.paths().home.absolute())]
    return service_file(argv, Path.home())


def _install(found: ServiceFile) -> list[dict[str, object]]:
    try:
        found.path.parent.mkdir(parents=True, exist_ok=True)
        found.path.write_text(found.text, encoding="utf-8")
    except OSError as exc:
        raise MCPCtlError(
            f"cannot write {found.path}: {exc.strerror}", "check the permissions of that folder"
        ) from None
    return _run(found.enable)


def _uninstall(found: ServiceFile) -> list[dict[str, object]]:
    ran = _run(found.disable[:1]) if found.path.exists() else []
    found.path.unlink(missing_ok=True)
    return ran + (_run(found.disable[1:]) if ran else [])


def _run(commands: list[list[str]]) -> list[dict[str, object]]:
    """Run each command whose program exists; a failure is reported, not raised (the file is what counts)."""
    ran: list[dict[str, object]] = []
    for argv in commands:
        if shutil.which(argv[0]) is None:
            ran.append({"command": argv, "ok": False, "detail": f"{argv[0]} not found: run it yourself later"})
            continue
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        ran.append({"command": argv, "ok": done.returncode == 0, "detail": detail[0]})
    return ran


def _show(
    verb: str, found: ServiceFile, dry_run: bool, ran: list[dict[str, object]], as_json: bool, plan: list[list[str]]
) -> None:
    if as_json:
        info = {"action": verb, "kind": found.kind, "path": str(found.path), "dry_run": dry_run, "ran": ran,
                "text": found.text if verb == "install" else None, "commands": plan}  # fmt: skip
        typer.echo(json.dumps(info))
        return
    if dry_run:
        typer.echo(f"would {'write' if verb == 'install' else 'remove'} {found.path}")
        if verb == "install":
            typer.echo(found.text, nl=False)
        for argv in plan:
            typer.echo("would run: " + " ".join(argv))
        return
    typer.echo(f"{'wrote' if verb == 'install' else 'removed'} {found.path}")
    for step in ran:
        mark = "ran" if step["ok"] else "could not run"
        command = " ".join(str(part) for part in step["command"])  # type: ignore[attr-defined]
        typer.echo(f"{mark}: {command}" + ("" if step["ok"] else f" ({step['detail']})"))
