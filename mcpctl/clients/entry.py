"""The entry a client runs to reach a server through mcpctl; one function makes it, so the address can
change in one place (issue 18's PROJECT/NAME)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def connect_entry(name: str, config: Path, home: Path | None) -> dict[str, Any]:
    """`ABS_MCPCTL -f ABS_CONFIG [--home ABS_HOME] connect PROJECT/NAME`: absolute paths, so it runs from a
    bare environment in any working directory (clients start servers with little PATH and a cwd of their
    choice); the project in the name, so it reaches that project's server whatever else is found. The
    config file still starts a server that never ran (a record knows its file only once it ran)."""
    from mcpctl.config.load import project_of

    command, *prefix = mcpctl_command()
    args = [*prefix, "-f", str(config.absolute())]
    if home is not None:
        args += ["--home", str(home.absolute())]
    return {"command": command, "args": [*args, "connect", f"{project_of(config)}/{name}"]}


def mcpctl_command() -> list[str]:
    """How this mcpctl is run, by absolute path: its script, or this interpreter with `-m mcpctl`."""
    invoked = Path(sys.argv[0])
    if invoked.name == "mcpctl":
        found = invoked if invoked.parent != Path() else Path(shutil.which("mcpctl") or invoked)
        if found.is_file():
            return [str(found.absolute())]
    beside = Path(sys.executable).parent / "mcpctl"  # the script of the venv this interpreter belongs to
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-m", "mcpctl"]


def connects_to(table: Mapping[str, Any]) -> str | None:
    """The server an entry reaches through `mcpctl ... connect NAME`, None if it does not run mcpctl."""
    command, args = table.get("command"), table.get("args")
    if not isinstance(command, str) or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        return None
    through_module = Path(command).name.startswith("python") and args[:2] == ["-m", "mcpctl"]
    if Path(command).name != "mcpctl" and not through_module:
        return None
    if "connect" not in args or args.index("connect") + 1 >= len(args):
        return None
    return str(args[args.index("connect") + 1])
