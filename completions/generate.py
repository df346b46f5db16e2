"""Write mcpctl's shell completions for bash, zsh and fish from the typer app's command tree.

    python completions/generate.py           # rewrite completions/mcpctl.bash, _mcpctl, mcpctl.fish
    python completions/generate.py --check   # exit 1 if a checked-in file is not what this would write

The tree is read from click (every group, command, option and argument; hidden ones are left out), so a
new command needs nothing here: run the script again. Arguments named like server names complete from
`mcpctl list --names`, with the -f/--config and --home already on the line passed through.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import render_bash
import render_fish
import render_zsh
import typer
from model import command_tree

from mcpctl.cli.app import app

HERE = Path(__file__).resolve().parent


def render_all() -> dict[str, str]:
    """Each completion file's name and the text it should have."""
    root = command_tree(typer.main.get_command(app))
    return {
        "mcpctl.bash": render_bash.render(root),
        "_mcpctl": render_zsh.render(root),
        "mcpctl.fish": render_fish.render(root),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write mcpctl's shell completions from its command tree.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a checked-in file is out of date")
    args = parser.parse_args(argv)
    files = render_all()
    stale = [name for name, text in files.items() if _read(HERE / name) != text]
    if args.check:
        if stale:
            print(f"completions/{stale[0]} is out of date: run `python completions/generate.py`", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        (HERE / name).write_text(files[name], encoding="utf-8")
        print(f"wrote completions/{name}")
    return 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
