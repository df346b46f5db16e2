"""Private directories: made 0700 whatever the umask, and refused (never chmodded) when someone else's.

A directory mcpctl creates is opened without following links and set to 0700 through its descriptor. A
directory that already exists is never changed: it must be a real directory (not a symlink) owned by the
user with no group/other bits, else it is refused. The state dir itself is judged by `check_home` before
it is written to, and by `judge_home` before it is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mcpctl.constants import ENV_HOME
from mcpctl.errors import StateDirError
from mcpctl.hints import NoReturn

# What an mcpctl state dir holds; a non-empty --home with none of these is someone else's directory.
_STATE_ENTRIES = frozenset({"lock", "servers", "logs", "run", "config", "env_rules.json", "key", "projects"})
_SHARED = stat.S_IWGRP | stat.S_IWOTH | stat.S_ISVTX


def private_dir(directory: Path) -> None:
    """`directory` exists, is the user's own and only theirs; missing parents are made 0700 too."""
    missing = _missing(directory)
    for path in missing:
        _make(path)
    if directory not in missing:
        _check_existing(directory)


def check_home(home: Path) -> None:
    """The state dir may be made here: it is missing, or the user's own, unshared, and empty or mcpctl's."""
    for path in _missing(home):
        _make(path)
    _judge(home, _stat(home, follow=True))  # the user may name their state dir through a symlink


def judge_home(home: Path) -> None:
    """The state dir may be read: it is missing (nothing in it to trust, and it is not made), or it is
    one `check_home` would take. A command that only reads trusts nobody else's records, logs or sockets
    either: one stat, and one listing of the state dir."""
    try:
        info = os.stat(home)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise blocked(home) from None
    except OSError as exc:
        _refuse(home, f"cannot be used: {exc.strerror}")
    _judge(home, info)


def _judge(home: Path, info: os.stat_result) -> None:
    if not stat.S_ISDIR(info.st_mode):
        _refuse(home, "is not a directory")
    if info.st_uid != os.getuid():
        _refuse(home, f"belongs to another user (uid {info.st_uid})")
    problem = foreign(home, info)
    if problem:
        _refuse(home, problem)


def foreign(home: Path, info: os.stat_result) -> str | None:
    """Why `home` is not a state dir mcpctl may make its own (shared, or someone's files), if it is not."""
    if info.st_mode & _SHARED:
        return f"is shared (mode {oct(stat.S_IMODE(info.st_mode))}): others can write to it"
    try:
        entries = set(os.listdir(home))
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if entries and not entries & _STATE_ENTRIES:
        return "is not empty and is not an mcpctl state directory"
    return None


def blocked(path: Path) -> StateDirError:
    """The error for a read that met ENOTDIR on `path`: it names the first component that is a file."""
    for part in (*reversed(path.parents), path):
        if os.path.lexists(part) and not os.path.isdir(part):
            return _refusal(part, "is not a directory")
    return _refusal(path, "cannot be used: Not a directory")


def _missing(directory: Path) -> list[Path]:
    """The components of `directory` that do not exist yet, outermost first."""
    missing: list[Path] = []
    path = directory
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]


def _make(path: Path) -> None:
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        _check_existing(path)  # made by someone else meanwhile: judged like any existing directory
        return
    except NotADirectoryError:  # a file where a folder above it should be: that file is named
        raise blocked(path) from None
    except OSError as exc:
        _refuse(path, f"cannot be created: {exc.strerror}", "a writable directory")
    fd = _open(path)
    try:
        if os.fstat(fd).st_uid != os.getuid():
            _refuse(path, "was replaced by another user's directory")
        os.fchmod(fd, 0o700)  # ours: mkdir's mode went through the umask
    finally:
        os.close(fd)


def _check_existing(path: Path) -> None:
    info = _stat(path, follow=False)
    if stat.S_ISLNK(info.st_mode):
        _refuse(path, "is a symlink (mcpctl never follows one to a private directory)")
    if not stat.S_ISDIR(info.st_mode):
        _refuse(path, "is not a directory")
    if info.st_uid != os.getuid():
        _refuse(path, f"belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        mode = oct(stat.S_IMODE(info.st_mode))
        _refuse(path, f"has mode {mode}, not 0o700 (mcpctl never changes a directory it did not create)")


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        _refuse(path, f"cannot be opened: {exc.strerror}")


def _stat(path: Path, follow: bool) -> os.stat_result:
    try:
        return os.stat(path, follow_symlinks=follow)
    except OSError as exc:
        _refuse(path, f"cannot be used: {exc.strerror}")


def _refuse(path: Path, reason: str, instead: str = "a directory of your own") -> NoReturn:
    raise _refusal(path, reason, instead)


def _refusal(path: Path, reason: str, instead: str = "a directory of your own") -> StateDirError:
    return StateDirError(f"refusing {path}: it {reason}", f"set ${ENV_HOME} or --home to {instead}")
