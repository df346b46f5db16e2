"""mcpctl.lean's cache of compiled data-class methods: used when it is the user's own, ignored otherwise.

Each test runs fresh interpreters (the cache is read when a class is made, once per process) that make
one data class of a module in the test's directory and print how many method sources they compiled.
"""

from __future__ import annotations

import marshal
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest

MODULE = '''
from mcpctl.lean import Record, dataclass


@dataclass(frozen=True)
class Point(Record):
    """A point."""

    x: int
    y: int = 0
'''

# `lean` looks `compile` up as a global: a module attribute of that name is what it then calls.
SCRIPT = """
import dataclasses, sys
sys.path.insert(0, sys.argv[1])
from mcpctl import lean
compiled = []
def counting(source, *rest):
    compiled.append(source)
    return compile(source, *rest)
lean.compile = counting
import points
p = points.Point(1, 2)
assert p == points.Point(1, 2) and p != points.Point(1) and hash(p) == hash(points.Point(1, 2))
assert repr(p) == "Point(x=1, y=2)", repr(p)
try:
    p.x = 3
except dataclasses.FrozenInstanceError:
    pass
else:
    raise AssertionError("not frozen")
print(len(compiled))
"""


@pytest.fixture
def place(tmp_path: Path) -> Path:
    (tmp_path / "points.py").write_text(MODULE)
    return tmp_path


def _env(place: Path, write: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = str(place / "cache")
    env["PYTHONPYCACHEPREFIX"] = str(place / "pyc")  # never into the checkout
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _compiled(place: Path, write: bool = True) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(place)],
        env=_env(place, write),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def _cache_file(place: Path) -> Path:
    folder = f"methods.{sys.implementation.cache_tag}.{marshal.version}"
    return place / "cache" / "mcpctl" / folder / "points.Point.bin"


def test_the_second_interpreter_compiles_nothing(place: Path) -> None:
    first = _compiled(place)
    assert first >= 4  # __init__, __repr__, __eq__, __setattr__, __delattr__, __hash__
    kept = _cache_file(place)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert _compiled(place) == 0
    assert _compiled(place) == 0


def test_nothing_is_written_under_pythondontwritebytecode(place: Path) -> None:
    assert _compiled(place, write=False) >= 4
    assert not (place / "cache").exists()


def test_a_damaged_file_is_compiled_anew_and_replaced(place: Path) -> None:
    first = _compiled(place)
    _cache_file(place).write_bytes(b"\xe3not marshal at all")
    assert _compiled(place) == first
    assert _compiled(place) == 0


def _planted(place: Path, marker: Path) -> None:
    """Replace each kept method maker with one that first leaves `marker` behind (the cache holds code
    that defines and returns each method: `def __create_fn__(...):` and a one-space-indented body)."""
    kept = _cache_file(place)
    planted: dict[str, types.CodeType] = {}
    for source in marshal.loads(kept.read_bytes()):
        head, _, body = source.partition("\n")
        planted[source] = compile(f"{head}\n open({str(marker)!r}, 'w').close()\n{body}", "<string>", "exec")
    kept.write_bytes(marshal.dumps(planted))


def test_kept_code_is_what_runs_when_the_file_is_the_users_own(place: Path) -> None:
    _compiled(place)
    marker = place / "ran-the-kept-code"
    _planted(place, marker)
    assert _compiled(place) == 0
    assert marker.exists()  # the positive control of the test below


@pytest.mark.parametrize("loosen", ["file", "folder"])
def test_code_others_can_write_is_never_run(place: Path, loosen: str) -> None:
    _compiled(place)
    marker = place / "ran-the-planted-code"
    _planted(place, marker)
    target = _cache_file(place) if loosen == "file" else _cache_file(place).parent
    target.chmod(0o666 if loosen == "file" else 0o777)
    assert _compiled(place) >= 4
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_a_folder_of_another_users_is_neither_read_nor_written(place: Path) -> None:
    folder = _cache_file(place).parent
    folder.mkdir(parents=True)
    os.chown(folder, 65534, 65534)
    assert _compiled(place) >= 4
    assert _compiled(place) >= 4
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory to another user needs root")
def test_no_folder_is_made_in_another_users_cache(place: Path) -> None:
    """`sudo mcpctl` with the user's HOME: root must not leave root-owned folders in the user's ~/.cache."""
    cache = place / "cache"
    cache.mkdir()
    os.chown(cache, 65534, 65534)
    assert _compiled(place) >= 4
    assert list(cache.iterdir()) == []
