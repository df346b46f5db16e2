"""mcpctl.lean: data classes made on first use behave as the ones dataclasses makes at once."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mcpctl.lean import Record, dataclass, make

PACKAGE = Path(__file__).resolve().parents[2] / "mcpctl"


def _classes() -> tuple[type, type, type]:
    @dataclass(frozen=True)
    class Base(Record):
        """A base."""

        a: int
        b: tuple[int, ...] = dataclasses.field(default_factory=tuple)

    @dataclass(frozen=True)
    class Child(Base):
        """A child."""

        c: str = "c"

    @dataclass
    class Mutable(Record):
        """Not frozen."""

        x: int = 0

    return Base, Child, Mutable


def test_a_record_is_made_on_first_use_and_behaves_as_a_data_class() -> None:
    base, child, mutable = _classes()
    assert "__dataclass_fields__" not in vars(base)  # nothing compiled yet
    assert [f.name for f in dataclasses.fields(child)] == ["a", "b", "c"]  # its base made with it
    assert "__dataclass_fields__" in vars(base)
    one = child(1)
    assert one == child(1, (), "c")
    assert repr(one).endswith("Child(a=1, b=(), c='c')")
    assert hash(one) == hash(child(1))
    assert dataclasses.replace(one, c="d").c == "d"
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.a = 2  # type: ignore[misc]
    changed = mutable()
    changed.x = 3
    assert changed == mutable(3)
    assert dataclasses.is_dataclass(mutable)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = base.nope  # type: ignore[attr-defined]


def test_make_and_threads_make_each_class_once() -> None:
    base, child, _ = _classes()
    make(base)
    fields = vars(base)["__dataclass_fields__"]
    threads = [threading.Thread(target=child, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert vars(base)["__dataclass_fields__"] is fields
    assert child(1).a == 1


def test_every_data_class_of_mcpctl_is_a_record() -> None:
    """A data class that forgot `Record` still works, but is made at import: slow again, silently.
    (pofile.py is loaded on its own by setup.py, without the package.)"""
    strays = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "pofile.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            dataclass_ = isinstance(node, ast.ClassDef) and any(_is_dataclass(d) for d in node.decorator_list)
            if dataclass_ and not node.bases:  # else a Record, or a subclass of one
                strays.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}")
    assert strays == []


def _is_dataclass(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Name) and target.id == "dataclass"


def test_importing_the_config_model_makes_none_of_its_classes() -> None:
    code = "import mcpctl.lean, mcpctl.config.model as m; print('__dataclass_fields__' in vars(m.ServerConfig))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("data", [b"", b"abc", bytes(range(256)) * 300])
def test_sha256_hex_is_hashlibs(data: bytes) -> None:
    import hashlib

    from mcpctl.lean import sha256_hex

    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
