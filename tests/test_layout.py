"""The house rules of the package layout, checked on every module (docs/ARCHITECTURE.md explains them).

Imports are read from the source (lazy and TYPE_CHECKING ones included), so a rule cannot be dodged by
moving an import into a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mcpctl"
MAX_LINES = 400

# What each part of mcpctl may import of mcpctl itself. "shared" is the top-level modules.
ALLOWED = {
    "shared": {"shared"},
    "config": {"shared", "config"},
    "shim": {"shared", "shim"},
    "control": {"shared", "config", "control"},
    "clients": {"shared", "config", "clients"},
    "render": {"shared", "config", "control", "clients", "render"},
    "export": {"shared", "config", "export"},
    "gateway": {"shared", "config", "control", "gateway"},
    "hot": {"shared", "config", "control", "render", "gateway", "hot"},  # the typer-free hot path (cli/ builds on it)
    "cli": {"shared", "config", "control", "clients", "render", "cli", "shim", "export", "gateway", "hot"},
    "api": {"shared", "config", "control", "api"},  # the Python API: the CLI's core, without typer or rich
    "root": {"shared", "api"},  # mcpctl/__init__.py re-exports the API, loaded on first use
}
# Third-party packages only one part may import (the CLI starts fast; the shim stays small).
ONLY_IN = {"typer": "cli", "rich": "render", "click": "cli"}
NEVER_IN = {"shim": {"mcp", "typer", "rich", "pydantic", "anyio", "httpx"}}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _part(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    if relative == Path("__main__.py"):
        return "cli"  # `python -m mcpctl` is the command line's entry point
    if relative == Path("__init__.py"):
        return "root"
    return relative.parts[0] if len(relative.parts) > 1 else "shared"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) for every import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "mcpctl":  # `from mcpctl import x`: x is a module or a package
                found += [(node.lineno, f"mcpctl.{alias.name}") for alias in node.names]
    return found


def _target_part(module: str) -> str | None:
    """Which part of mcpctl `module` is in; None for anything outside mcpctl."""
    bits = module.split(".")
    if bits[0] != "mcpctl":
        return None
    if len(bits) == 1 or not (PACKAGE / bits[1]).is_dir():
        return "shared"
    return bits[1]


def _broken(path: Path, part: str) -> list[str]:
    broken = []
    for line, module in _imports(path):
        target = _target_part(module)
        top = module.split(".")[0]
        if target is not None and target not in ALLOWED[part]:
            broken.append(f"line {line}: {part} may not import {module} ({target})")
        if top in ONLY_IN and ONLY_IN[top] != part:
            broken.append(f"line {line}: only {ONLY_IN[top]}/ imports {top}")
        if top in NEVER_IN.get(part, ()):
            broken.append(f"line {line}: {part}/ never imports {top}")
    return broken


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layout(path: Path) -> None:
    broken = _broken(path, _part(path))
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_size_limit(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by concept"


def test_package_init_files_only_register() -> None:
    """A package's __init__ holds a docstring and imports, never logic (cli/ registers its commands)."""
    for init in PACKAGE.glob("*/__init__.py"):
        tree = ast.parse(init.read_text())
        logic = [
            node
            for node in tree.body
            if not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr)
            and not (
                isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]
            )
        ]
        assert not logic, f"{init.relative_to(PACKAGE)} has code at line {logic[0].lineno}"


def _registers(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom | ast.Expr):
        return True
    return isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]


def test_the_checker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mcpctl.cli.app import Globals\n"
        "def f():\n    from mcpctl.control import observe\n    import rich.console\n"
    )
    assert _broken(bad, "shim") == [
        "line 3: shim may not import mcpctl.cli.app (cli)",
        "line 5: shim may not import mcpctl.control (control)",
        "line 6: only render/ imports rich",
        "line 6: shim/ never imports rich",
    ]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_data_class_has_a_docstring(path: Path) -> None:
    """A data class without one makes `dataclasses` read its signature through `inspect`, which
    mcpctl/lean.py defers for the shim and the hot path: the first such class would import it after all."""
    bare = [
        f"line {node.lineno}: {node.name}"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ClassDef)
        and any("dataclass" in ast.unparse(d) for d in node.decorator_list)
        and ast.get_docstring(node) is None
    ]
    assert not bare
