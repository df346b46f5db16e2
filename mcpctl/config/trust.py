"""Whose files mcpctl runs commands from, as git's safe.directory: no one else's config or env file runs as you.

A file found by the upward search (or named by $MCPCTL_CONFIG), an env file and an MCP client's config
file must be owned by the user or root and not writable by group or others, and so must every directory
from it up to the user's home (or /): owned by the user or root, not writable by others. A sticky
world-writable directory (/tmp) is fine above the file (others cannot replace what is ours in it) but
never as the file's own directory. An env or client file must be a regular file (a device or a pipe
would be read for ever). A config file given with -f is the user's choice: only its owner and
world-writability are checked. `--trust` skips every check.

Each refusal's hint says what works for that kind of file: a config file can be chosen with -f, an env
or client file only trusted (or copied, moved, chmodded).
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from mcpctl.config.environment import env_file_paths
from mcpctl.config.model import Config, UntrustedFile
from mcpctl.hints import NoReturn
from mcpctl.lean import Record, dataclass

_WRITABLE = stat.S_IWGRP | stat.S_IWOTH
_ENV_REGULAR = "name a regular file in env_file"
_ENV_FOREIGN = "copy it to a file of your own and name that in env_file, or pass --trust if you trust its owner"
_CLIENT_REGULAR = "move it aside: a client reads a regular file"
_CLIENT_FOREIGN = "if you trust its owner, pass --trust (its servers are imported; the file is left as it is)"


@dataclass(frozen=True)
class _Subject(Record):
    """The file judged: what it is called, and how the user may use it anyway."""

    what: str
    path: Path
    config: Path  # the config file it belongs to (itself for a config file)
    explicit: bool = False  # a config file given with -f
    chosen: bool = False  # a config file, which -f may choose; other files can only be trusted
    regular: str = ""  # what to do when it is not a regular file; "" for a config file, which need not be one
    foreign: str = ""  # what to do when it is another user's (a config file's: -f and --trust)

    def otherwise(self) -> str:
        """The way past the directory and mode checks: -f for a config file, --trust for the rest."""
        return f"pass -f {self.path} explicitly" if self.chosen else "pass --trust if you trust who can write it"

    def trust(self) -> str:
        """The way to use a file of another user."""
        if self.foreign:
            return self.foreign
        how = "--trust" if self.explicit else f"-f {self.path} --trust"
        return f"if you trust its owner, pass {how}"


def check_config(path: Path, explicit: bool, trust: bool) -> None:
    """Refuse (exit 2) a config file someone else could have written; see the module docstring."""
    if not trust:
        _check(_Subject("config file", path, path, explicit, chosen=True))


def check_env_files(config: Config, explicit: bool, trust: bool) -> None:
    """The same rules for every env_file the config names (a missing one is the environment's problem)."""
    if trust:
        return
    for server in config.servers.values():
        for path in env_file_paths(server, config.base_dir):
            if path.exists():
                what = f"env_file of server '{server.name}'"
                _check(_Subject(what, path, config.path or path, explicit, False, _ENV_REGULAR, _ENV_FOREIGN))


def check_client_file(path: Path) -> None:
    """An MCP client's config file, judged as a found config before it is read or rewritten: it names
    commands that `client setup` imports into the user's own config."""
    _check(_Subject("client config file", path, path, regular=_CLIENT_REGULAR, foreign=_CLIENT_FOREIGN))


# Who besides the owner can write a file, by (its group may, others may): said so, and the chmod that stops it.
_writers = {
    (True, False): ("its group", "g"),
    (False, True): ("others", "o"),
    (True, True): ("its group and others", "go"),
}


def _check(subject: _Subject) -> None:
    path, explicit = subject.path, subject.explicit
    info = path.stat()
    if info.st_uid not in (os.getuid(), 0):
        _refuse(subject, f"it belongs to another user (uid {info.st_uid})", subject.trust())
    if subject.regular and not stat.S_ISREG(info.st_mode):
        _refuse(subject, "it is not a regular file", subject.regular)
    group = not explicit and info.st_mode & stat.S_IWGRP  # a file named explicitly may be its group's to write
    if info.st_mode & stat.S_IWOTH or group:
        mode = oct(stat.S_IMODE(info.st_mode))
        who, bits = _writers[bool(group), bool(info.st_mode & stat.S_IWOTH)]
        fix = f"run `chmod {bits}-w {path}`" + ("" if explicit else f", or {subject.otherwise()}")
        _refuse(subject, f"{who} can write to it (mode {mode})", fix)
    if explicit:
        return
    link = path.lstat()  # a planted symlink to a file of yours is still someone else's choice
    if link.st_uid not in (os.getuid(), 0):
        how = f"pass -f {path} --trust" if subject.chosen else "name the file it points to, or pass --trust"
        _refuse(subject, f"it is a symlink of another user (uid {link.st_uid})", how)
    for directory in dict.fromkeys((path.absolute().parent, path.resolve().parent)):
        _check_directories(directory, subject)


def _check_directories(directory: Path, subject: _Subject) -> None:
    home = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    for current in (directory, *directory.parents):
        info = current.stat()
        shared = info.st_mode & _WRITABLE and (current == directory or not info.st_mode & stat.S_ISVTX)
        if info.st_uid not in (os.getuid(), 0) or shared:
            whose = f"uid {info.st_uid}, mode {oct(stat.S_IMODE(info.st_mode))}"
            _refuse(subject, f"others can change {current} ({whose})", _directory_fix(current, info, subject))
        if current == home:
            return


def _directory_fix(directory: Path, info: os.stat_result, subject: _Subject) -> str:
    """chmod only helps a directory of the user's own that is not meant to be shared (a sticky one, as
    /tmp, is): else the file has to move."""
    move = "move the file to a directory of your own"
    if info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX:
        move = f"run `chmod go-w {directory}`, or {move}"
    return f"{move}, or {subject.otherwise()}"


def _refuse(subject: _Subject, why: str, hint: str) -> NoReturn:
    raise UntrustedFile(f"refusing the {subject.what} {subject.path}: {why}", hint, subject.config)
