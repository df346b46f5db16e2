"""The `mcpctl` entry point (and `python -m mcpctl`): the hot path when it can (hot/run.py), else the
typer app (cli/)."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # what the typer app prints, without its ~150 ms of imports
        from mcpctl import __version__

        print(f"mcpctl {__version__}")
        return
    if sys.platform != "win32":  # Windows goes to the typer app, which says it is not supported
        from mcpctl.control import early as ahead  # before anything else: `start NAME`'s shim starts up now

        early = ahead.for_argv(sys.argv[1:])
        from mcpctl import lean  # noqa: F401 - before anything imports dataclasses
        from mcpctl.hot import run

        parsed = run.parse(sys.argv[1:])
        if parsed is not None:
            run.main(parsed, early)
        if early is not None:
            early.discard()
    from mcpctl.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
