"""Private directories: made 0700 whatever the umask, and refused (never chmodded) when someone else's.

A directory mcpctl creates is opened without following links and set to 0700 through its descriptor. A
directory that already exists is never changed: it must be a real directory (not a symlink) owned by the
user with no group/other bits, else it is refused. The state dir itself is judged by `check_home` before
it is written to, and by `judge_home` before it is read (both ask first, by `judge_ancestors`, that
nobody else can rename or swap it: the folders above it are the user's or root's); every existing
directory below it on the way to what a command reads or writes, by `judge_below` (readers and writers
alike, each directory once per command). Every file in it is opened by `open_own`: never through a
symlink, and only when it is the user's own regular file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import Callable
from pathlib import Path

from mcpctl.constants import ENV_HOME
from mcpctl.errors import StateDirError
from mcpctl.hints import NoReturn
from mcpctl.i18n import N_

# What an mcpctl state dir holds; a non-empty --home with none of these is someone else's directory.
_STATE_ENTRIES = frozenset({"lock", "servers", "logs", "run", "config", "env_rules.json", "key", "projects"})
_SHARED = stat.S_IWGRP | stat.S_IWOTH | stat.S_ISVTX
# What to do about something planted in the state dir: mcpctl makes its own again where it was.
_MOVE = N_("move it out of the state dir (mcpctl makes its own again), or run `mcpctl doctor`")
_REMOVE = N_("remove it (mcpctl makes its own again), or run `mcpctl doctor`")
# The English the refusals below are made of, which the CLI shows translated (render/output, `internal`).
KNOWN = (
    N_(
        "refusing {path}, above the {what} at {where}: it belongs to another user (uid {uid}), who can rename what is"
        " in it"
    ),
    N_(
        "refusing {path}, above the {what} at {where}: {who} can write to it, and so rename what is in it (mode {mode})"
    ),
    N_("refusing {path}: it {reason}"),
    N_("has mode {mode}, not 0o700 (mcpctl never changes a directory it did not create)"),
    N_("is a symlink of another user (uid {uid}), who can point it elsewhere"),
    N_("is shared (mode {mode}): {who} can write to it"),
    N_("belongs to another user (uid {uid})"),
    N_("is not {what}"),
    N_("cannot be used: {error}"),
    N_("cannot be created: {error}"),
    N_("cannot be opened: {error}"),
    N_("cannot be read: {error}"),
    N_("choose a {what} under folders only you (or root) can change ($MCPCTL_HOME or --home)"),
    N_("choose a {what} under folders only you (or root) can change ($XDG_RUNTIME_DIR or $TMPDIR)"),
    N_("run `chmod {bits}-w {path}`, or {hint}"),
)
_WORDS = (  # what fills them, translated as they are
    N_("is a symlink (mcpctl never follows one in its state dir)"),
    N_("is a symlink (mcpctl never follows one to a private directory)"),
    N_("is not empty and is not an mcpctl state directory"),
    N_("was replaced by another user's directory"),
    N_("set $MCPCTL_HOME or --home to a directory of your own"),
    N_("set $MCPCTL_HOME or --home to a writable directory"),
    N_("a directory"),
    N_("a regular file"),
    N_("a socket"),
    N_("state dir"),
    N_("runtime dir"),
)
# Who besides the owner can write a folder, by (its group may, others may), and the chmod that stops it:
# worded as config/trust.py words a file.
_WRITERS = {
    (True, False): (N_("its group"), "g"),
    (False, True): (N_("others"), "o"),
    (True, True): (N_("its group and others"), "go"),
}


def private_dir(directory: Path) -> None:
    """`directory` exists, is the user's own and only theirs; missing parents are made 0700 too."""
    missing = _missing(directory)
    for path in missing:
        _make(path)
    if directory not in missing:
        _check_existing(directory)


def judge_below(home: Path, directory: Path, judged: set[Path]) -> None:
    """Every existing directory from below `home` down to `directory` is a real directory of the user's
    with mode 0700, else refused (exit 1); the first missing one ends the walk (nothing below it exists to
    trust). `judged` holds the directories judged already, so each costs one lstat per command."""
    unjudged = []
    while directory not in (home, directory.parent) and directory not in judged:  # to the nearest judged
        unjudged.append(directory)
        directory = directory.parent
    for path in reversed(unjudged):
        info = _existing(path, follow=False, hint=_MOVE)
        if info is None:
            return
        problem = _dir_problem(info)
        if problem:
            _refuse(path, problem, _MOVE)
        judged.add(path)


def open_own(path: Path, flags: int, mode: int = 0o600) -> int:
    """`path` opened (a descriptor) without following a symlink, refused (StateDirError, exit 1) unless it
    is the user's own regular file: nothing mcpctl reads or writes in its state dir is someone else's."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise _refusal(path, "is a symlink (mcpctl never follows one in its state dir)", _REMOVE) from None
    info = os.fstat(fd)
    problem = _not_ours(info, stat.S_ISREG, "a regular file")
    if problem:
        os.close(fd)
        raise _refusal(path, problem, _REMOVE)
    return fd


def own_socket(path: Path) -> Path:
    """`path`, unless it is a planted symlink or another user's socket (StateDirError, exit 1): mcpctl
    connects only to its own shims' sockets. A missing one is the connect's to find."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            _refuse(path, "is a symlink (mcpctl never follows one in its state dir)", _REMOVE)
        problem = _not_ours(info, stat.S_ISSOCK, "a socket")
        if problem:
            _refuse(path, problem, _REMOVE)
    return path


def read_own(path: Path) -> bytes:
    """The whole of `path`, opened by `open_own`."""
    with os.fdopen(open_own(path, os.O_RDONLY), "rb") as handle:
        return handle.read()


def _dir_problem(info: os.stat_result) -> str | None:
    """Why the directory `info` (an lstat) describes is not one mcpctl may use, if it is not."""
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink (mcpctl never follows one to a private directory)"
    problem = _not_ours(info, stat.S_ISDIR, "a directory")
    if problem is None and stat.S_IMODE(info.st_mode) & 0o077:
        mode = oct(stat.S_IMODE(info.st_mode))
        return f"has mode {mode}, not 0o700 (mcpctl never changes a directory it did not create)"
    return problem


def _not_ours(info: os.stat_result, kind: Callable[[int], bool], what: str) -> str | None:
    if not kind(info.st_mode):
        return f"is not {what}"
    if info.st_uid != os.getuid():
        return f"belongs to another user (uid {info.st_uid})"
    return None


def judge_ancestors(path: Path, what: str = "state dir") -> None:
    """Nobody else can rename or swap `path`: it is not a symlink of another user, and every existing
    directory above it (and above where it leads, if it is a symlink), up to the user's home or /, is
    the user's or root's and not writable by group or others unless sticky (/tmp), as config/trust.py
    asks of the folders above a config file. Refused (exit 1) otherwise. A few stats per command."""
    starts = [os.path.dirname(path)]
    with contextlib.suppress(OSError):
        link = os.lstat(path)
        if stat.S_ISLNK(link.st_mode):
            if link.st_uid not in (os.getuid(), 0):
                _refuse(path, f"is a symlink of another user (uid {link.st_uid}), who can point it elsewhere")
            starts.append(os.path.dirname(os.path.realpath(path)))
    for start in dict.fromkeys(starts):
        _judge_above(start, path, what)


def _judge_above(directory: str, path: Path, what: str) -> None:
    home, current = os.path.expanduser("~"), directory
    while True:
        with contextlib.suppress(OSError):  # missing: made 0700 by mcpctl, or by nobody
            _judge_ancestor(os.stat(current), current, path, what)
        parent = os.path.dirname(current)
        if current in (home, parent):
            return
        current = parent


def _judge_ancestor(info: os.stat_result, current: str, path: Path, what: str) -> None:
    choose = f"choose a {what} under folders only you (or root) can change" + (
        f" (${ENV_HOME} or --home)" if what == "state dir" else " ($XDG_RUNTIME_DIR or $TMPDIR)"
    )
    where = f"refusing {current}, above the {what} at {path}"
    if info.st_uid not in (os.getuid(), 0):
        theirs = f"{where}: it belongs to another user (uid {info.st_uid}), who can rename what is in it"
        raise StateDirError(theirs, choose)
    if info.st_mode & stat.S_ISVTX or not others_can_write(info):
        return
    mode = oct(stat.S_IMODE(info.st_mode))
    group = bool(info.st_mode & stat.S_IWGRP) and not _private_group(info.st_gid)
    who, bits = _WRITERS[group, bool(info.st_mode & stat.S_IWOTH)]
    fix = f"run `chmod {bits}-w {current}`, or {choose}" if info.st_uid == os.getuid() else choose
    raise StateDirError(f"{where}: {who} can write to it, and so rename what is in it (mode {mode})", fix)


def others_can_write(info: os.stat_result) -> bool:
    """Someone but the user may write to what `info` describes: it is writable by others, or by a group
    another user is in. The user's private group (a group of the user alone, as systems with umask 002
    give each user, whose folders are then group-writable) lets nobody else in."""
    if info.st_mode & stat.S_IWOTH:
        return True
    return bool(info.st_mode & stat.S_IWGRP) and not _private_group(info.st_gid)


@functools.cache
def _private_group(gid: int) -> bool:
    """Only the user is in group `gid`: it is the user's own primary group, nobody else's primary group,
    and lists no other member. Looked up only for a group-writable folder."""
    import grp
    import pwd

    if gid != os.getgid():
        return False
    try:
        me = pwd.getpwuid(os.getuid()).pw_name
        members = set(grp.getgrgid(gid).gr_mem)
        others = {user.pw_name for user in pwd.getpwall() if user.pw_gid == gid} - {me}
    except KeyError:
        return False
    return members <= {me} and not others


def check_home(home: Path) -> None:
    """The state dir may be made here: it is missing, or the user's own, unshared, and empty or mcpctl's."""
    judge_ancestors(home)
    for path in _missing(home):
        _make(path)
    _judge(home, _stat(home, follow=True))  # the user may name their state dir through a symlink


def judge_home(home: Path) -> None:
    """The state dir may be read: it is missing (nothing in it to trust, and it is not made), or it is
    one `check_home` would take. A command that only reads trusts nobody else's records, logs or sockets
    either: one stat, and one listing of the state dir."""
    judge_ancestors(home)
    info = _existing(home, follow=True)
    if info is not None:
        _judge(home, info)


def _existing(path: Path, follow: bool, hint: str = "") -> os.stat_result | None:
    """`path`'s stat (an lstat unless `follow`), None when it is missing; a file above it is named."""
    try:
        return os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise blocked(path) from None
    except OSError as exc:
        _refuse(path, f"cannot be used: {exc.strerror}", hint)


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
        # a sticky folder that nobody else can write is refused too (sticky says it is meant to be shared)
        writers = bool(info.st_mode & stat.S_IWGRP), bool(info.st_mode & stat.S_IWOTH)
        who = _WRITERS.get(writers, _WRITERS[False, True])[0]
        return f"is shared (mode {oct(stat.S_IMODE(info.st_mode))}): {who} can write to it"
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
        _refuse(path, f"cannot be created: {exc.strerror}", f"set ${ENV_HOME} or --home to a writable directory")
    fd = _open(path)
    try:
        if os.fstat(fd).st_uid != os.getuid():
            _refuse(path, "was replaced by another user's directory")
        os.fchmod(fd, 0o700)  # ours: mkdir's mode went through the umask
    finally:
        os.close(fd)


def _check_existing(path: Path) -> None:
    problem = _dir_problem(_stat(path, follow=False))
    if problem:
        _refuse(path, problem)


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


def _refuse(path: Path, reason: str, hint: str = "") -> NoReturn:
    raise _refusal(path, reason, hint)


def _refusal(path: Path, reason: str, hint: str = "") -> StateDirError:
    return StateDirError(
        f"refusing {path}: it {reason}", hint or f"set ${ENV_HOME} or --home to a directory of your own"
    )
