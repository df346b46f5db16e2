"""Views, config hashes, the version store and the shim's update guard, without processes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mcpctl.config.document import document
from mcpctl.config.history import KEEP, get, listing, record
from mcpctl.config.load import load
from mcpctl.config.model import ServerConfig
from mcpctl.config.views import RESTART_FIELDS, config_hash, redact_document, restore, secret_key, view
from mcpctl.contract import UPDATABLE, Spec, updated
from mcpctl.paths import Paths
from mcpctl.settings import Impact, having


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mcpctl.toml"
    path.write_text(body)
    return path


def test_every_setting_has_a_known_impact() -> None:
    settings = {f.name for f in dataclasses.fields(ServerConfig)} - {"name"}
    restart = set(RESTART_FIELDS) - {"env_file_contents"}  # not a setting: what the env files hold
    groups = [restart, set(UPDATABLE), set(having(Impact.NONE))]
    assert set().union(*groups) == settings
    assert sum(len(g) for g in groups) == len(settings)  # each in exactly one group
    assert set(UPDATABLE) <= {f.name for f in dataclasses.fields(Spec)}


def test_views_seal_secrets_and_keep_references(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        '[servers.a]\ncommand = "x"\nargs = ["--token=s3cret-value", "plain"]\nenv_file = "a.env"\n'
        '[servers.a.env]\nTOKEN = "s3cret-value"\nHOME_DIR = "${HOME}"\nBEARER = "Bearer ${TOKEN}"\n',
    )
    (tmp_path / "a.env").write_text("OTHER=file-secret\n")
    config = load(path)
    key = secret_key(Paths(tmp_path / "home"))
    seen = view(config, config.servers["a"], key)
    blob = json.dumps(seen)
    assert "s3cret-value" not in blob
    assert "file-secret" not in blob
    assert seen["env"]["HOME_DIR"] == "${HOME}"
    assert seen["env"]["BEARER"].startswith("***redacted:")
    assert seen["args"][1] == "plain"
    assert seen["args"][0].startswith("***redacted:")
    assert view(config, config.servers["a"], key) == seen  # the same key gives the same digests

    sealed = redact_document(document(config), key)
    assert "s3cret-value" not in json.dumps(sealed)
    restored, missing = restore(sealed, [document(config)], key)
    assert (restored, missing) == (document(config), [])
    _, missing = restore(sealed, [], key)
    assert sorted(missing) == ["servers.a.args[0]", "servers.a.env.BEARER", "servers.a.env.TOKEN"]


def test_config_hash_follows_env_file_contents_and_global_alerts(tmp_path: Path) -> None:
    path = _config(tmp_path, '[servers.a]\ncommand = "x"\nenv_file = "a.env"\n')
    (tmp_path / "a.env").write_text("K=1\n")

    def digest() -> str:
        config = load(path)
        return config_hash(config, config.servers["a"])

    first = digest()
    (tmp_path / "a.env").write_text("K=2\n")
    second = digest()
    assert second != first
    path.write_text(path.read_text() + '[alerts.hot]\nmetric = "cpu_percent"\nthreshold = 80\n')
    assert digest() not in (first, second)


def test_the_store_keeps_the_newest_versions(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    path = _config(tmp_path, '[servers.a]\ncommand = "x"\n')
    config = load(path)
    for number in range(KEEP + 2):
        record(paths, config, f"content {number}".encode(), f"note {number}", [])
    kept = listing(paths)
    assert [v.id for v in kept] == list(range(3, KEEP + 3))
    assert get(paths, "last").note == f"note {KEEP + 1}"
    assert get(paths, "7").id == 7
    assert len(list(paths.history.iterdir())) == KEEP


def _spec() -> Spec:
    return Spec(name="a", command="x", args=[], env={}, cwd=None, url=None, startup_timeout=5, stop_timeout=5,
                config_hash="old")  # fmt: skip


def test_the_shim_takes_only_usable_settings() -> None:
    spec, changed = updated(_spec(), {"settings": {"health_interval": 2, "command": "evil"}, "config_hash": "new"})
    assert (spec.health_interval, spec.command, spec.config_hash, changed) == (2, "x", "new", ["health_interval"])
    for bad in (
        {"settings": {"health_interval": "soon"}, "config_hash": "n"},
        {"settings": {"restart_on_unhealthy": 1}, "config_hash": "n"},
        {"settings": {"unhealthy_after": 0}, "config_hash": "n"},
        {"settings": {"restart": "sometimes"}, "config_hash": "n"},
        {"settings": {"alerts": {"x": {"metric": "nope"}}}, "config_hash": "n"},
        {"settings": {}},
        "not a table",
    ):
        with pytest.raises(ValueError, match=r"."):
            updated(_spec(), bad)
