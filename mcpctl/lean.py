"""Imported first by `python -m mcpctl.shim` and by the `mcpctl` entry point: what keeps fifty shims
small and the hot commands quick.

Data classes, made when first used. On Python 3.11, `dataclasses.dataclass` compiles five or six methods
from source for every class, ~1-5 ms each: ~45 ms of a `status`, although most of the classes a command
imports it never makes an instance of. So mcpctl's data classes derive from `Record` and take this
module's `dataclass`: the class is made a data class, by `dataclasses.dataclass` itself, the first time
it is instantiated or asked for its fields (`dataclasses.fields`, `is_dataclass`, `__match_args__`).
Until then it is a plain class nobody can see a difference in. For the type checker both are what
`dataclasses` says they are.

`inspect`, deferred. `dataclasses` imports it (with ast, dis and tokenize: ~1.2 MB of private memory in
every shim, ~13 ms of every command's start-up) for a single call, the signature it writes into the
docstring of a data class that has none. Every data class the shim and the hot path load has a
docstring, so here `inspect` is a stand-in module that imports the real one the first time anything
reads an attribute of it, which in a shim is never (typer does, in every other command).

Their methods, compiled once. Three quarters of making a data class is compiling its methods' source,
and a class gives the same source every time: 11-12 classes, 16-26 ms of a `status` or a `call`. So the
code `dataclasses` compiles while this module makes a class is kept in a per-user cache, one file per
class (`$XDG_CACHE_HOME/mcpctl/`, like `__pycache__` for these methods), and read back next time, keyed
by the source itself. The file is read only when it and its directory are the user's own and nobody else can
write them; it is written only when something was missing from it, and never under
PYTHONDONTWRITEBYTECODE. Any doubt (unreadable, foreign, damaged) and the source is compiled as before.
"""

from __future__ import annotations

import _thread
import contextlib
import importlib
import marshal
import os
import stat
import sys
import types

from mcpctl.hints import TYPE_CHECKING, Any

__all__ = [
    "Deferred",
    "Methods",
    "Record",
    "cache_dir",
    "dataclass",
    "defer",
    "make",
    "read_private",
    "sha256_hex",
    "shake_256",
    "write_private",
]


class Deferred(types.ModuleType):
    """Stands in `sys.modules` for a module not imported yet; the first attribute read imports it."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def defer(name: str) -> None:
    """Make `import name` free until the module is used (its `__spec__` stays None: the import system
    then takes the stand-in as it is, without reading anything else of it)."""
    sys.modules.setdefault(name, Deferred(name))


defer("inspect")
# `urllib.parse` (which pathlib imports) imports `ipaddress` for one check of a bracketed host in a URL:
# ~0.4 MB of private memory in every shim, ~1-2 ms of every command, for what a URL server's address
# may never need.
defer("ipaddress")

import dataclasses  # noqa: E402 - after `inspect` is deferred


def shake_256(data: bytes, length: int) -> bytes:
    """`hashlib.shake_256(data).digest(length)` by the interpreter's own SHA-3 (`_sha3`) where it has one."""
    try:
        module = importlib.import_module("_sha3")
    except ImportError:
        import hashlib

        return hashlib.shake_256(data).digest(length)
    return bytes(module.shake_256(data).digest(length))


def sha256_hex(data: bytes) -> str:
    """`hashlib.sha256(data).hexdigest()` by the interpreter's own SHA-256 where it has one (`_sha256`,
    `_sha2` from 3.12): `hashlib` loads OpenSSL, ~5 ms of a `status` that only hashes configs."""
    for name in ("_sha256", "_sha2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return str(module.sha256(data).hexdigest())
    import hashlib

    return hashlib.sha256(data).hexdigest()


class Methods:
    """The compiled methods of one data class, by their source, in a cache file of their own."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.codes = _read_codes(path)
        self.used: dict[str, types.CodeType] = {}
        self.missed = False

    def exec(self, source: str, globals: dict[str, Any], locals: dict[str, Any]) -> None:
        """`exec(source, globals, locals)`, with the code compiled from `source` once for all processes."""
        code = self.codes.get(source)
        if code is None:
            code, self.missed = compile(source, "<string>", "exec"), True
        self.used[source] = code
        exec(code, globals, locals)  # what dataclasses itself would run, compiled

    def keep(self) -> None:
        """Write the file again when something was compiled (then it holds what this class uses now)."""
        if self.missed and self.path is not None and not sys.dont_write_bytecode:
            _write_codes(self.path, self.used)


def cache_dir(kind: str) -> str | None:
    """Where this interpreter keeps a `kind` of what it made once for all processes (compiled methods,
    parsed config documents): under the XDG cache dir (~/.cache), on POSIX."""
    if os.name != "posix":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    return os.path.join(base, "mcpctl", f"{kind}.{sys.implementation.cache_tag}.{marshal.version}")


_CACHE_DIR = cache_dir("methods")


def _cache_file(cls: type) -> str | None:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if _CACHE_DIR is None or not name.replace(".", "").replace("_", "").isalnum():
        return None  # a class made in a function (its name has <locals>) is not kept
    return os.path.join(_CACHE_DIR, f"{name}.bin")


def _own(info: os.stat_result) -> bool:
    """The user's own, and nobody else may write to it."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read_codes(path: str | None) -> dict[str, types.CodeType]:
    """What the file at `path` holds, when it and its directory are the user's own; else nothing."""
    codes = read_private(path)
    if not isinstance(codes, dict) or not all(
        isinstance(key, str) and isinstance(code, types.CodeType) for key, code in codes.items()
    ):
        return {}
    return codes


def read_private(path: str | None) -> object:
    """The value marshalled in the file at `path`, when it and its directory are the user's own and
    nobody else may write them (marshal trusts what it reads); else None."""
    if path is None:
        return None
    try:
        folder = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not _own(os.fstat(folder)):
            return None
        fd = os.open(os.path.basename(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not _own(info):
                return None
            data = b""
            while chunk := os.read(fd, 1 << 20):
                data += chunk
        finally:
            os.close(fd)
        return marshal.loads(data)
    except (OSError, ValueError, EOFError, TypeError):
        return None
    finally:
        os.close(folder)


def _write_codes(path: str, codes: dict[str, types.CodeType]) -> None:
    """The methods are compiled again each time when they cannot be written."""
    write_private(path, codes)


def write_private(path: str, value: Any) -> None:
    """`value` marshalled into the file at `path`: atomically (a temp file, then rename), in directories
    of the user's own, made 0700 where missing (never under someone else's: a `sudo mcpctl` with the
    user's HOME writes nothing); silently not at all when that cannot be, or `value` is not marshallable."""
    directory = os.path.dirname(path)
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        data = memoryview(marshal.dumps(value))
        if not _private(directory):
            return
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        os.replace(temp, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _private(directory: str, depth: int = 3) -> bool:
    """`directory` is the user's own, made (0700) in a parent of theirs when missing, `depth` levels up."""
    try:
        info = os.lstat(directory)
        return stat.S_ISDIR(info.st_mode) and _own(info)  # a symlink is refused
    except FileNotFoundError:
        pass
    parent = os.path.dirname(directory)
    if depth == 0 or parent == directory or not _private(parent, depth - 1):
        return False
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    return _own(os.lstat(directory))


if TYPE_CHECKING:
    from dataclasses import dataclass

    class Record:
        """The base of mcpctl's data classes (see the module's docstring)."""

    def make(*classes: type[Record]) -> None:
        """Make these data classes now (see below)."""

else:
    _FIRST_USE = frozenset({"__dataclass_fields__", "__dataclass_params__", "__match_args__"})
    _making = _thread.RLock()  # reentrant: making a class never waits on itself

    class _MadeWhenUsed(type):
        """The metaclass of `Record`: makes a class that `dataclass` marked a data class on first use."""

        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            if "__dataclass_fields__" not in cls.__dict__:
                _make(cls)
            return super().__call__(*args, **kwargs)

        def __getattr__(cls, name: str) -> Any:
            if name in _FIRST_USE and "__record_params__" in cls.__dict__:
                _make(cls)
                return getattr(cls, name)
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")

    def _make(cls: type) -> None:
        with _making:
            params = cls.__dict__.get("__record_params__")
            if params is None:  # made already (by another thread), or a subclass nobody marked
                return
            for base in reversed(cls.__mro__[1:]):  # a data class's fields include its bases'
                if "__record_params__" in base.__dict__:
                    _make_now(base)
            _make_now(cls)

    def _make_now(cls: type) -> None:
        params = cls.__dict__.get("__record_params__")
        if params is not None:
            delattr(cls, "__record_params__")
            methods, module = Methods(_cache_file(cls)), vars(dataclasses)
            before = module.get("exec")  # not there: it compiles each method by the builtin `exec`
            module["exec"] = methods.exec
            try:
                dataclasses.dataclass(cls, **params)
            finally:
                if before is None:
                    del module["exec"]
                else:
                    module["exec"] = before
            methods.keep()

    class Record(metaclass=_MadeWhenUsed):
        """The base of mcpctl's data classes (see the module's docstring)."""

        __slots__ = ()

    def make(*classes: type[Record]) -> None:
        """Make these data classes now: a shim, while it waits for its spec (and a brood, once for all its
        shims), makes those it will need at once, ~15 ms it would otherwise spend after the spec came."""
        for cls in classes:
            _make(cls)

    def dataclass(cls: type | None = None, /, **params: Any) -> Any:
        """`dataclasses.dataclass`, made on first use for a `Record` (at once for any other class)."""

        def mark(cls: type) -> type:
            if not isinstance(cls, _MadeWhenUsed):
                return dataclasses.dataclass(cls, **params)
            cls.__record_params__ = params  # type: ignore[attr-defined]
            return cls

        return mark if cls is None else mark(cls)
