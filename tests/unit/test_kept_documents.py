"""The parsed documents of TOML configs, kept (mcpctl.config.load): the same text is not parsed again; a
changed text is; a kept file others could write is never read.

Each test runs fresh interpreters that load the config and print whether `tomllib` was imported and
what each server's command is.
"""

from __future__ import annotations

import json
import marshal
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mcpctl import lean
from mcpctl.config import load

SCRIPT = """
import json, sys
from pathlib import Path
from mcpctl.config.load import load
from mcpctl.errors import ConfigError
try:
    config = load(Path(sys.argv[1]))
except ConfigError as exc:
    print(json.dumps({"parsed": "tomllib" in sys.modules, "error": exc.message}))
else:
    commands = {name: s.command for name, s in config.servers.items()}
    print(json.dumps({"parsed": "tomllib" in sys.modules, "commands": commands}))
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "mcpctl.toml"
    path.write_text('[servers.one]\ncommand = "first"\n\n[servers.two]\ncommand = "second"\n')
    return path


def _load(config: Path, write: bool = True) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = str(config.parent / "cache")
    env["PYTHONPYCACHEPREFIX"] = str(config.parent / "pyc")  # never into the checkout
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(config)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    loaded: dict[str, object] = json.loads(out.stdout)
    return loaded


def _kept(config: Path) -> Path:
    folder = config.parent / "cache" / "mcpctl" / f"documents.{sys.implementation.cache_tag}.{marshal.version}"
    return folder / f"{lean.sha256_hex(str(config).encode())}.bin"


def test_the_same_text_is_parsed_once(config: Path) -> None:
    first = _load(config)
    assert first == {"parsed": True, "commands": {"one": "first", "two": "second"}}
    kept = _kept(config)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    assert _load(config) == {**first, "parsed": False}


def test_a_changed_text_is_parsed_anew(config: Path) -> None:
    _load(config)
    text = config.read_text().replace('"first"', '"FIRST"')  # the same size: only the text tells
    config.write_text(text)
    assert _load(config) == {"parsed": True, "commands": {"one": "FIRST", "two": "second"}}
    assert _load(config)["parsed"] is False


def test_what_is_kept_is_still_validated(config: Path) -> None:
    config.write_text('[servers.one]\ncommand = "first"\nstop_timeout = -1\n')
    first = _load(config)
    assert first["parsed"] is True
    assert "stop_timeout" in str(first["error"])
    assert _load(config) == {**first, "parsed": False}


def test_nothing_is_kept_under_pythondontwritebytecode(config: Path) -> None:
    assert _load(config, write=False)["parsed"] is True
    assert not (config.parent / "cache").exists()
    assert _load(config, write=False)["parsed"] is True


def _plant(config: Path) -> None:
    """A kept document for the config's very text that names another command (sealed as load seals it)."""
    kept = _kept(config)
    document = tomllib.loads(config.read_text())
    document["servers"]["one"]["command"] = "planted"
    sealed = load._sealed(document, config.read_bytes())
    kept.write_bytes(marshal.dumps(sealed))


def test_a_kept_document_of_the_users_own_is_what_loads(config: Path) -> None:
    _load(config)
    _plant(config)
    assert _load(config)["commands"] == {"one": "planted", "two": "second"}  # the control of the test below


@pytest.mark.parametrize("loosen", ["file", "folder"])
def test_a_document_others_can_write_is_never_read(config: Path, loosen: str) -> None:
    _load(config)
    _plant(config)
    target = _kept(config) if loosen == "file" else _kept(config).parent
    target.chmod(0o666 if loosen == "file" else 0o777)
    assert _load(config) == {"parsed": True, "commands": {"one": "first", "two": "second"}}


def test_what_is_kept_tells_nothing_without_the_text(config: Path) -> None:
    """The config's secrets are in its document: kept sealed with the text, so that a cache file outlives
    the config (or its old text) without giving them away."""
    config.write_text('[servers.one]\ncommand = "first"\nenv = {API_KEY = "sk-live-0123456789abcdef"}\n')
    _load(config)
    kept = _kept(config).read_bytes()
    assert b"sk-live" not in kept
    assert b"API_KEY" not in kept
    assert b"first" not in kept
    config.write_text(config.read_text().replace("first", "other"))
    assert _load(config) == {"parsed": True, "commands": {"one": "other"}}


def test_a_document_marshal_cannot_hold_is_not_kept(config: Path) -> None:
    config.write_text('[servers.one]\ncommand = "first"\n\n[servers.one.env]\nWHEN = 1979-05-27T07:32:00Z\n')
    first = _load(config)
    assert first["parsed"] is True
    assert "WHEN" in str(first["error"])
    assert not _kept(config).exists()
    assert _load(config) == first
