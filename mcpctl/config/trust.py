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
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass

_WRITABLE = stat.S_IWGRP | stat.S_IWOTH
_ENV_REGULAR = N_("name a regular file in env_file")
_ENV_FOREIGN = N_("copy it to a file of your own and name that in env_file, or pass --trust if you trust its owner")
_CLIENT_REGULAR = N_("move it aside: a client reads a regular file")
_CLIENT_FOREIGN = N_("if you trust its owner, pass --trust (its servers are imported; the file is left as it is)")
# The refusals, by the kind of file ({server}: the server whose env_file it is)
_CONFIG = N_("refusing the config file {path}: {why}")
_ENV_FILE = N_("refusing the env_file of server '{server}' {path}: {why}")
_CLIENT_FILE = N_("refusing the client config file {path}: {why}")
_FOREIGN = N_("it belongs to another user (uid {uid})")
_NOT_REGULAR = N_("it is not a regular file")
_WRITERS = N_("{who} can write to it (mode {mode})")
_FOREIGN_LINK = N_("it is a symlink of another user (uid {uid})")
_SHARED_DIRECTORY = N_("others can change {directory} ({whose})")
_CHMOD = N_("run `chmod {bits}-w {path}`")
_CHMOD_OR = N_("run `chmod {bits}-w {path}`, or {otherwise}")
_MOVE = N_("move the file to a directory of your own, or {otherwise}")
_EXPLICIT = N_("pass -f {path} explicitly")
_TRUSTED = N_("pass --trust if you trust who can write it")
_TRUST_OWNER = N_("if you trust its owner, pass {how}")
_LINK_CHOSEN = N_("pass -f {path} --trust")
_LINK_TRUSTED = N_("name the file it points to, or pass --trust")
# What a refusal (raised in English, translated when shown: render/output) is made of.
KNOWN = (
    _CONFIG,
    _ENV_FILE,
    _CLIENT_FILE,
    _FOREIGN,
    _NOT_REGULAR,
    _WRITERS,
    N_("its group"),
    N_("others"),
    N_("its group and others"),
    _FOREIGN_LINK,
    _SHARED_DIRECTORY,
    _CHMOD,
    _CHMOD_OR,
    _MOVE,
    _EXPLICIT,
    _TRUSTED,
    _TRUST_OWNER,
    _LINK_CHOSEN,
    _LINK_TRUSTED,
    _ENV_REGULAR,
    _ENV_FOREIGN,
    _CLIENT_REGULAR,
    _CLIENT_FOREIGN,
)


@dataclass(frozen=True)
class _Subject(Record):
    """The file judged: how a refusal of it reads (a template of {path}, {why} and {server}), and how the
    user may use it anyway."""

    refusal: str
    path: Path
    config: Path  # the config file it belongs to (itself for a config file)
    explicit: bool = False  # a config file given with -f
    chosen: bool = False  # a config file, which -f may choose; other files can only be trusted
    regular: str = ""  # what to do when it is not a regular file; "" for a config file, which need not be one
    foreign: str = ""  # what to do when it is another user's (a config file's: -f and --trust)
    server: str = ""  # the server whose env_file it is

    def otherwise(self) -> str:
        """The way past the directory and mode checks: -f for a config file, --trust for the rest."""
        return _EXPLICIT.format(path=self.path) if self.chosen else _TRUSTED

    def trust(self) -> str:
        """The way to use a file of another user."""
        if self.foreign:
            return self.foreign
        how = "--trust" if self.explicit else f"-f {self.path} --trust"
        return _TRUST_OWNER.format(how=how)


def check_config(path: Path, explicit: bool, trust: bool) -> None:
    """Refuse (exit 2) a config file someone else could have written; see the module docstring."""
    if not trust:
        _check(_Subject(_CONFIG, path, path, explicit, chosen=True))


def check_env_files(config: Config, explicit: bool, trust: bool) -> None:
    """The same rules for every env_file the config names (a missing one is the environment's problem)."""
    if trust:
        return
    for server in config.servers.values():
        for path in env_file_paths(server, config.base_dir):
            if path.exists():
                owner = config.path or path
                _check(_Subject(_ENV_FILE, path, owner, explicit, False, _ENV_REGULAR, _ENV_FOREIGN, server.name))


def check_client_file(path: Path) -> None:
    """An MCP client's config file, judged as a found config before it is read or rewritten: it names
    commands that `client setup` imports into the user's own config."""
    _check(_Subject(_CLIENT_FILE, path, path, regular=_CLIENT_REGULAR, foreign=_CLIENT_FOREIGN))


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
        _refuse(subject, _FOREIGN.format(uid=info.st_uid), subject.trust())
    if subject.regular and not stat.S_ISREG(info.st_mode):
        _refuse(subject, _NOT_REGULAR, subject.regular)
    group = not explicit and info.st_mode & stat.S_IWGRP  # a file named explicitly may be its group's to write
    if info.st_mode & stat.S_IWOTH or group:
        mode = oct(stat.S_IMODE(info.st_mode))
        who, bits = _writers[bool(group), bool(info.st_mode & stat.S_IWOTH)]
        fix = (
            _CHMOD.format(bits=bits, path=path)
            if explicit
            else _CHMOD_OR.format(bits=bits, path=path, otherwise=subject.otherwise())
        )
        _refuse(subject, _WRITERS.format(who=who, mode=mode), fix)
    if explicit:
        return
    link = path.lstat()  # a planted symlink to a file of yours is still someone else's choice
    if link.st_uid not in (os.getuid(), 0):
        how = _LINK_CHOSEN.format(path=path) if subject.chosen else _LINK_TRUSTED
        _refuse(subject, _FOREIGN_LINK.format(uid=link.st_uid), how)
    for directory in dict.fromkeys((path.absolute().parent, path.resolve().parent)):
        _check_directories(directory, subject)


def _check_directories(directory: Path, subject: _Subject) -> None:
    home = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    for current in (directory, *directory.parents):
        info = current.stat()
        shared = info.st_mode & _WRITABLE and (current == directory or not info.st_mode & stat.S_ISVTX)
        if info.st_uid not in (os.getuid(), 0) or shared:
            whose = f"uid {info.st_uid}, mode {oct(stat.S_IMODE(info.st_mode))}"
            why = _SHARED_DIRECTORY.format(directory=current, whose=whose)
            _refuse(subject, why, _directory_fix(current, info, subject))
        if current == home:
            return


def _directory_fix(directory: Path, info: os.stat_result, subject: _Subject) -> str:
    """chmod only helps a directory of the user's own that is not meant to be shared (a sticky one, as
    /tmp, is): else the file has to move."""
    move = _MOVE.format(otherwise=subject.otherwise())
    if info.st_uid == os.getuid() and not info.st_mode & stat.S_ISVTX:
        return _CHMOD_OR.format(bits="go", path=directory, otherwise=move)
    return move


def _refuse(subject: _Subject, why: str, hint: str) -> NoReturn:
    message = subject.refusal.format(path=subject.path, why=why, server=subject.server)
    raise UntrustedFile(message, hint, subject.config)
