"""Imported first by `python -m mcpctl.shim` and by the `mcpctl` entry point: what keeps fifty shims
small and the hot commands quick.

`dataclasses` imports `inspect` (with ast, dis and tokenize: ~1.2 MB of private memory in every shim,
~13 ms of every command's start-up) for a single call, the signature it writes into the docstring of a
data class that has none. Every data class the shim and the hot path load has a docstring, so here
`inspect` is deferred: a stand-in module that imports the real one the first time anything reads an
attribute of it, which in a shim is never (typer does, in every other command).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


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
