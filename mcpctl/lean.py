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
"""

from __future__ import annotations

import _thread
import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__all__ = ["Deferred", "Record", "dataclass", "defer", "make", "sha256_hex"]


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

import dataclasses  # noqa: E402 - after `inspect` is deferred


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
            dataclasses.dataclass(cls, **params)

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
