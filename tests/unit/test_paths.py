"""The user's dirs: on Linux mcpctl applies the XDG rule itself, and must land where platformdirs does."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs
import pytest

from mcpctl import paths

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rule is what Linux uses")


@pytest.mark.parametrize("value", [None, "", "relative/dir", "/abs/state"])
def test_the_user_dirs_are_platformdirs_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert paths.default_home() == Path(platformdirs.user_state_dir("mcpctl", appauthor=False))
    assert paths.user_config_dir() == Path(platformdirs.user_config_dir("mcpctl", appauthor=False))
    expected = Path(value) if value and value.startswith("/") else tmp_path / ".local" / "state"
    assert paths.default_home() == expected / "mcpctl"
