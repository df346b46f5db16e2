"""mcpctl.hints: a shim imports no `typing`, and the run-time stand-ins do what annotations need."""

from __future__ import annotations

import subprocess
import sys

SHIM_MODULES = (
    "mcpctl.shim.__main__",  # everything a shim imports before it serves
    "mcpctl.process",  # and what it imports when it stops
    "mcpctl.shim.foreground",  # `mcpctl run`
    "mcpctl.shim.per_client",  # share = "per-client"
    "mcpctl.shim.http_relay",  # a url server
)


def test_a_shim_never_imports_typing() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in SHIM_MODULES)
        + "print(sorted(m for m in sys.modules if m == 'typing' or m.startswith('typing.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_stand_ins_take_what_annotations_and_aliases_ask_of_them() -> None:
    code = """
from mcpctl import hints
assert hints.TYPE_CHECKING is False
Message = dict[str, hints.Any]  # an alias built at run time
assert Message == dict[str, object], Message
class Clock(hints.Protocol):
    number: int
    def now(self) -> float: ...
class Real:
    def now(self) -> float:
        return 1.0
assert Real().now() == 1.0 and issubclass(Clock, hints.Protocol)
T = hints.TypeVar("T", bound=Clock)
assert T == "T"
print("ok", 'typing' in __import__('sys').modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["ok", "False"]
