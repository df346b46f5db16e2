"""The registry of settings (mcpctl.settings) and everything that lists settings agree with each other."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mcpctl import settings
from mcpctl.config import checks
from mcpctl.config.model import ServerConfig
from mcpctl.config.views import RESTART_FIELDS, impact
from mcpctl.contract import UPDATABLE, Spec
from mcpctl.settings import SETTINGS, Impact, Kind
from mcpctl.states import Readiness

# What the CLI adds to a spec besides the settings.
_SPEC_EXTRAS = {"config_hash", "secrets", "env_sources", "project", "config_file"}


def _defaults(cls: type) -> dict[str, Any]:
    found = {}
    for item in dataclasses.fields(cls):
        if item.default_factory is not dataclasses.MISSING:
            found[item.name] = item.default_factory()
        elif item.default is not dataclasses.MISSING:
            found[item.name] = item.default
    return found


def test_server_config_has_the_registrys_settings_in_its_order_with_its_defaults() -> None:
    assert [f.name for f in dataclasses.fields(ServerConfig)] == ["name", *settings.NAMES]
    assert _defaults(ServerConfig) == {s.name: s.default for s in SETTINGS}


def test_the_spec_carries_the_settings_marked_for_it_with_their_defaults() -> None:
    spec_fields = {f.name for f in dataclasses.fields(Spec)}
    assert spec_fields - _SPEC_EXTRAS == {"name", *settings.IN_SPEC}
    registry = {s.name: s.default for s in SETTINGS}
    spec_defaults = {name: value for name, value in _defaults(Spec).items() if name not in _SPEC_EXTRAS}
    assert spec_defaults == {name: registry[name] for name in spec_defaults}
    assert set(UPDATABLE) <= set(settings.IN_SPEC)  # a shim can only update what its spec holds


def test_every_setting_has_a_check_that_takes_its_default() -> None:
    assert set(checks.BY_KIND) == set(Kind) - {Kind.CHOICE}
    assert list(checks.FIELDS) == list(settings.NAMES)
    for setting in SETTINGS:
        if setting.default not in (None, (), {}):  # empty means unset: the file may not write it so
            assert checks.FIELDS[setting.name](setting.default) is None, setting.name


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_the_impact_of_a_change_is_the_registrys(setting: settings.Setting) -> None:
    assert impact(setting.name) == setting.impact
    assert impact(f"{setting.name}.entry") == setting.impact
    assert (setting.name in UPDATABLE) == (setting.impact == Impact.UPDATE)
    assert (setting.name in RESTART_FIELDS) == (setting.impact == Impact.RESTART)


def test_readiness_choices_are_the_readiness_modes() -> None:
    assert settings.BY_NAME["readiness"].choices == ("mcp", "log", "alive")
    expected = "expected one of 'mcp', 'log', 'alive', got the string 'sometimes'"
    assert checks.FIELDS["readiness"]("sometimes") == expected
    assert all(checks.FIELDS["readiness"](mode) is None for mode in Readiness)
