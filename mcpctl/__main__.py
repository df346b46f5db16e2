"""The `mcpctl` entry point (and `python -m mcpctl`): the hot path when it can (hot/run.py), else the
typer app (cli/)."""

from __future__ import annotations

import gc
import sys


def main() -> None:
    # A hot command lives for a moment and leaves without the interpreter's teardown (hot/context.py's
    # `leave`): what it would collect, the kernel frees at its exit. Collecting as it imports and loads
    # cost ~2 ms of a `status`. `connect` (hours of relaying) and the typer app's commands collect.
    gc.disable()
    if sys.argv[1:] == ["--version"]:  # what the typer app prints, without its ~150 ms of imports
        from mcpctl import __version__

        print(f"mcpctl {__version__}")
        return
    if sys.platform != "win32":  # Windows goes to the typer app, which says it is not supported
        from mcpctl.control import early as ahead  # before anything else: `start NAME`'s shim starts up now

        early = ahead.for_argv(sys.argv[1:])
        from mcpctl import lean  # noqa: F401 - before anything imports dataclasses
        from mcpctl.hot import options, run

        sys.argv[1:] = options.hoisted(sys.argv[1:])  # for the typer app below too
        parsed = run.parse(sys.argv[1:])
        if parsed is not None:
            if parsed[0] == "connect":
                gc.enable()
            run.main(parsed, early)
        if early is not None:
            early.discard()
    gc.enable()
    from mcpctl.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
