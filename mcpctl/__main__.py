"""The `mcpctl` entry point (and `python -m mcpctl`): the hot path when it can (hot/run.py), else the
typer app (cli/)."""

from __future__ import annotations

import sys

from mcpctl import lean  # noqa: F401 - first, before anything imports dataclasses


def main() -> None:
    from mcpctl.hot import run

    parsed = run.parse(sys.argv[1:]) if sys.platform != "win32" else None
    if parsed is not None:
        run.main(parsed)
    from mcpctl.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
