"""typing's names for annotations, without importing `typing` at run time.

`typing` costs each process that imports it ~7 ms and 0.7 MB of private memory, and a shim uses it for
annotations only (which `from __future__ import annotations` never evaluates). So the modules a shim
imports take these names from here: the type checker sees typing's own, and at run time `Any`,
`BinaryIO` and `NoReturn` are `object` (enough for an alias such as `dict[str, Any]`), `Protocol` is a
plain base class (a protocol is only ever a type to check against, never asked `isinstance`), and
`TypeVar` makes a placeholder. The shim never imports `typing`; nor do the hot commands (with the
config's document kept, not even through `tomllib`): their modules take these names too. The typer app does.
"""

from __future__ import annotations

__all__ = ["TYPE_CHECKING", "Any", "BinaryIO", "NoReturn", "Protocol", "TypeVar"]

TYPE_CHECKING = False  # what typing.TYPE_CHECKING is at run time; type checkers take it as True

if TYPE_CHECKING:
    from typing import Any, BinaryIO, NoReturn, Protocol, TypeVar
else:
    Any = BinaryIO = NoReturn = object

    class Protocol:
        """A protocol class's base at run time: nothing (its checking is the type checker's)."""

        __slots__ = ()

    def TypeVar(name: str, *constraints: object, **options: object) -> object:
        """A type variable's placeholder: only annotations, which are never evaluated, refer to it."""
        return name
