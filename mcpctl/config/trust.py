"""Whose files mcpctl runs commands from, as git's safe.directory: no one else's config or env file runs as you.

A file found by the upward search (or named by $MCPCTL_CONFIG) must be owned by the user or root and not
writable by group or others, and so must every directory from it up to the user's home (or /): owned by
the user or root, not writable by others. A sticky world-writable directory (/tmp) is fine above the
file (others cannot replace what is ours in it) but never as the file's own directory. A file given with
-f is the user's choice: only its owner and world-writability are checked. `--trust` skips every check.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from mcpctl.config.environment import env_file_paths
from mcpctl.config.model import Config
from mcpctl.errors import ConfigError
from mcpctl.hints import NoReturn

_WRITABLE = stat.S_IWGRP | stat.S_IWOTH


def check_config(path: Path, explicit: bool, trust: bool) -> None:
    """Refuse (exit 2) a config file someone else could have written; see the module docstring."""
    if not trust:
        _check(path, "config file", explicit)


def check_env_files(config: Config, explicit: bool, trust: bool) -> None:
    """The same rules for every env_file the config names (a missing one is the environment's problem)."""
    if trust:
        return
    for server in config.servers.values():
        for path in env_file_paths(server, config.base_dir):
            if path.exists():
                _check(path, f"env_file of server '{server.name}'", explicit)


def _check(path: Path, what: str, explicit: bool) -> None:
    info = path.stat()
    fix = f"or pass -f {path} explicitly" if not explicit else ""
    if info.st_uid not in (os.getuid(), 0):
        how = "pass --trust" if explicit else f"pass -f {path} --trust"
        _refuse(f"{what} {path}: it belongs to another user (uid {info.st_uid})", f"if you trust its owner, {how}")
    if info.st_mode & stat.S_IWOTH or (not explicit and info.st_mode & stat.S_IWGRP):
        mode = oct(stat.S_IMODE(info.st_mode))
        _refuse(f"{what} {path}: others can write to it (mode {mode})", f"run `chmod go-w {path}` {fix}".strip())
    if explicit:
        return
    link = path.lstat()  # a planted symlink to a file of yours is still someone else's choice
    if link.st_uid not in (os.getuid(), 0):
        _refuse(f"{what} {path}: it is a symlink of another user (uid {link.st_uid})", f"pass -f {path} --trust")
    for directory in dict.fromkeys((path.absolute().parent, path.resolve().parent)):
        _check_directories(directory, path, what)


def _check_directories(directory: Path, path: Path, what: str) -> None:
    home = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    for current in (directory, *directory.parents):
        info = current.stat()
        shared = info.st_mode & _WRITABLE and (current == directory or not info.st_mode & stat.S_ISVTX)
        if info.st_uid not in (os.getuid(), 0) or shared:
            whose = f"uid {info.st_uid}, mode {oct(stat.S_IMODE(info.st_mode))}"
            _refuse(
                f"{what} {path}: others can change {current} ({whose})",
                f"move the file, run `chmod go-w {current}` if it is yours, or pass -f {path} explicitly",
            )
        if current == home:
            return


def _refuse(message: str, hint: str) -> NoReturn:
    raise ConfigError(f"refusing the {message}", hint)
