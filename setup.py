"""Compiles the message catalogs (mcpctl/locale/*/LC_MESSAGES/*.po) into `.mo` files as the package is built,
so a wheel carries them; everything else about the build is in pyproject.toml."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _pofile():  # type: ignore[no-untyped-def]
    """mcpctl/pofile.py on its own (stdlib only): the package and its dependencies are not installed yet."""
    spec = importlib.util.spec_from_file_location("_mcpctl_pofile", HERE / "mcpctl" / "pofile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        pofile = _pofile()
        # An editable install reads the source tree: the .mo goes beside its .po (ignored by git).
        target = HERE if getattr(self, "editable_mode", False) else Path(self.build_lib)
        for po in sorted((HERE / "mcpctl" / "locale").glob("*/LC_MESSAGES/*.po")):
            mo = target / po.relative_to(HERE).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            pofile.compile_po(po, mo)


setup(cmdclass={"build_py": BuildWithCatalogs})
