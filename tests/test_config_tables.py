"""Every table and key of the config survives what writes it back: import, export, rollback, client setup.

The config below holds each top-level key the loader reads; the tests run the real CLI on real files and
compare what it wrote with what was there, table by table and as loaded configs.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from mcpctl.config.document import document, dumps
from mcpctl.config.load import load, parse
from mcpctl.config.model import Config
from tests.conftest import Env

EXAMPLES = Path(__file__).parent.parent / "examples"

FULL = """\
project = "tables-demo"
home = "state"

[gateway]
listen = "127.0.0.1:8799"
tls_cert = "certs/cert.pem"
tls_key = "certs/key.pem"
allowed_origins = ["https://app.example.com"]
metrics_public = true
auto_start = false

[groups.pair]
servers = ["a", "b"]

[env_rules.TOKEN]
pattern = "t-.+"

[alerts.slow]
metric = "cpu_percent"
threshold = 50

[servers.a]
command = "a-server"
enabled = false

[servers.b]
command = "b-server"
args = ["--one"]
enabled = false
"""
WHOLE = tomllib.loads(FULL)
# Everything but the servers: what the audit found import, export and rollback dropped.
AROUND = {key: value for key, value in WHOLE.items() if key != "servers"}


def around(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if key not in ("servers", "mcpServers")}


def written(env: Env) -> dict[str, Any]:
    return tomllib.loads(env.config.read_text())


def same(a: Config, b: Config) -> None:
    """Two loaded configs are equal but for the file they were read from; so are the paths they resolve."""
    assert dataclasses.replace(a, path=b.path) == b
    assert meaning(a) == meaning(b)


def meaning(config: Config) -> tuple[Any, ...]:
    """What a config says, with the paths it writes relative to itself resolved (a moved copy says the same)."""
    gateway = config.gateway
    assert gateway is not None
    files = (config.file_path(gateway.tls_cert), config.file_path(gateway.tls_key))
    gateway = dataclasses.replace(gateway, tls_cert=None, tls_key=None)
    tables = (config.servers, config.disabled, config.env_rules, config.alerts, config.groups)
    return (*tables, gateway, files, config.project, config.home)


def test_the_full_config_uses_every_top_level_key() -> None:
    from mcpctl.config.document import MERGE
    from mcpctl.config.model import TOP_LEVEL

    assert set(WHOLE) == set(TOP_LEVEL) == set(MERGE)


def test_import_merge_keeps_gateway_groups_project_and_home(env: Env) -> None:
    env.config.write_text(FULL)
    original = load(env.config)
    source = env.workdir / "claude_desktop_config.json"
    source.write_text(json.dumps({"mcpServers": {"c": {"command": "c-server"}}}))
    proc = env.run("config", "import", str(source))
    assert proc.returncode == 0, proc.stderr
    after = written(env)
    assert around(after) == AROUND
    assert after["servers"] == {**WHOLE["servers"], "c": {"command": "c-server"}}
    loaded = load(env.config)
    assert (loaded.gateway, loaded.groups) == (original.gateway, original.groups)
    assert (loaded.project, loaded.home) == (original.project, original.home)


def test_import_replace_replaces_servers_and_keeps_the_rest(env: Env) -> None:
    env.config.write_text(FULL)
    source = env.workdir / "in.json"
    servers = {"a": {"command": "a2"}, "b": {"command": "b2"}}
    source.write_text(json.dumps({"mcpServers": servers}))
    proc = env.run("config", "import", str(source), "--replace")
    assert proc.returncode == 0, proc.stderr
    assert written(env) == {**AROUND, "servers": servers}
    before = env.config.read_bytes()
    source.write_text(json.dumps({"mcpServers": {"a": {"command": "a3"}}}))
    refused = env.run("config", "import", str(source), "--replace")  # [groups.pair] would name a server gone
    assert refused.returncode == 2
    assert "groups.pair.servers: unknown server 'b'" in refused.stderr
    assert env.config.read_bytes() == before


def test_import_into_an_existing_config_never_moves_its_project(env: Env) -> None:
    env.config.write_text(FULL)
    other = env.workdir / "other"
    other.mkdir()
    (other / "mcpctl.toml").write_text(
        'project = "someone-else"\nhome = "their-state"\n'
        '[gateway]\nlisten = "127.0.0.1:9000"\n[groups.solo]\nservers = ["d"]\n[servers.d]\ncommand = "d"\n'
    )
    proc = env.run("config", "import", str(other / "mcpctl.toml"))
    assert proc.returncode == 0, proc.stderr
    after = written(env)
    assert (after["project"], after["home"]) == ("tables-demo", "state")  # the target's own, as they were
    assert after["gateway"] == {"listen": "127.0.0.1:9000"}  # one gateway: the imported file's
    assert after["groups"] == {"pair": {"servers": ["a", "b"]}, "solo": {"servers": ["d"]}}


def test_import_into_a_new_file_takes_every_table_with_paths_rebased(env: Env) -> None:
    source = env.workdir / "from" / "mcpctl.toml"
    source.parent.mkdir()
    source.write_text(FULL)
    target = env.workdir / "to" / "mcpctl.toml"
    target.parent.mkdir()
    proc = env.run("-f", str(target), "config", "import", str(source))
    assert proc.returncode == 0, proc.stderr
    after = tomllib.loads(target.read_text())
    assert after["home"] == str(source.parent / "state")
    assert after["gateway"]["tls_cert"] == str(source.parent / "certs" / "cert.pem")
    assert (after["project"], after["groups"]) == ("tables-demo", WHOLE["groups"])
    assert meaning(load(target)) == meaning(load(source))


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_export_writes_every_table_the_file_has(env: Env, fmt: str) -> None:
    env.config.write_text(FULL)
    proc = env.run("config", "export", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    doc = tomllib.loads(proc.stdout) if fmt == "toml" else json.loads(proc.stdout)
    assert around(doc) == AROUND
    assert doc["servers" if fmt == "toml" else "mcpServers"] == WHOLE["servers"]
    copy = env.workdir / f"copy.{fmt}"
    copy.write_text(proc.stdout)
    same(load(copy), load(env.config))


def test_export_to_another_folder_keeps_what_the_paths_point_at(env: Env) -> None:
    env.config.write_text(FULL)
    out = env.workdir / "exports" / "all.toml"
    out.parent.mkdir()
    assert env.run("config", "export", "-o", str(out)).returncode == 0
    assert meaning(load(out)) == meaning(load(env.config))


def test_rollback_writes_back_gateway_groups_project_and_home(env: Env) -> None:
    env.config.write_text(FULL)
    assert env.run("apply", "-m", "v1").returncode == 0  # every server is disabled: nothing starts
    env.config.write_text(FULL.split("[gateway]", maxsplit=1)[0] + '[servers.b]\ncommand = "b"\nenabled = false\n')
    assert env.run("apply", "-m", "v2").returncode == 0
    proc = env.run("config", "rollback", "1")
    assert proc.returncode == 0, proc.stderr
    assert written(env) == WHOLE


def applied_as_an_older_mcpctl_recorded_it(env: Env) -> None:
    """FULL applied, and its version rewritten as schema 1 wrote it: no [gateway], no [groups]."""
    env.config.write_text(FULL)
    assert env.run("apply").returncode == 0
    history = env.home / "projects" / "tables-demo" / "config" / "history" / "000001.json"
    version = json.loads(history.read_text())
    version["schema"] = 1
    version["document"] = {k: v for k, v in version["document"].items() if k not in ("gateway", "groups")}
    history.write_text(json.dumps(version))


def test_rollback_to_a_version_recorded_without_them_keeps_the_files(env: Env) -> None:
    """A version an older mcpctl recorded holds no [gateway] or [groups]: they stay as the file has them."""
    applied_as_an_older_mcpctl_recorded_it(env)
    env.config.write_text(FULL.replace('args = ["--one"]', 'args = ["--two"]'))
    proc = env.run("config", "rollback", "1")
    assert proc.returncode == 0, proc.stderr
    assert written(env) == WHOLE


def test_client_setup_rewriting_the_whole_file_keeps_every_table(tmp_path: Path) -> None:
    from mcpctl.clients import mcpctl_toml

    path = tmp_path / "mcpctl.toml"
    inline = '[servers]\na = { command = "a-server", enabled = false }\n\n[servers.b]'  # no [servers.a] to replace
    path.write_text(FULL.replace('[servers.a]\ncommand = "a-server"\nenabled = false\n\n[servers.b]', inline))
    assert tomllib.loads(path.read_text()) == WHOLE
    after = tomllib.loads(mcpctl_toml.merged(path, path.read_bytes(), {"a": {"command": "new"}}).decode())
    assert around(after) == AROUND
    assert after["servers"] == {**WHOLE["servers"], "a": {"command": "new"}}


CONFIGS = [*sorted(EXAMPLES.glob("*.toml")), None]


@pytest.mark.parametrize("example", CONFIGS, ids=lambda p: p.name if p else "full")
@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_document_round_trips_every_config(example: Path | None, fmt: str, tmp_path: Path) -> None:
    """load(write(load(file))) == load(file), for the examples and the full config."""
    if example is None:
        example = tmp_path / "mcpctl.toml"
        example.write_text(FULL)
    first = load(example)
    there = example.with_suffix(f".{fmt}")
    again, problems = parse(dumps(document(first), fmt), there)
    assert problems == []
    assert again is not None
    assert dataclasses.replace(again, path=first.path) == first
    assert document(again) == document(first)


# -- what config diff and the import preview say of the tables outside [servers.*] ------------------------


def changes(report: dict[str, Any]) -> dict[str, tuple[Any, Any, str]]:
    return {c["field"]: (c["from"], c["to"], c["impact"]) for c in report["global"]}


CHANGED = (
    FULL.replace('listen = "127.0.0.1:8799"', 'listen = "127.0.0.1:8800"')
    .replace("metrics_public = true\n", "")
    .replace('[groups.pair]\nservers = ["a", "b"]', '[groups.solo]\nservers = ["b"]')
    .replace("threshold = 50", "threshold = 75")
    .replace('command = "a-server"', 'command = "a-server"\nenv = { TOKEN = "t-very-secret" }')
)


SLOW = {"metric": "cpu_percent", "threshold": 50}


def test_diff_shows_gateway_groups_global_alerts_and_project(env: Env) -> None:
    env.config.write_text(FULL)
    assert env.run("apply", "-m", "v1").returncode == 0  # every server is disabled: nothing starts
    env.config.write_text(CHANGED)
    report = env.json("config", "diff")
    assert report["servers"] == []  # no enabled server: what changed is all outside [servers.*]
    assert changes(report) == {
        "alerts.slow": (SLOW, {**SLOW, "threshold": 75}, "update"),  # each server's shim takes it in place
        "gateway.listen": ("127.0.0.1:8799", "127.0.0.1:8800", "gateway"),
        "gateway.metrics_public": (True, False, "gateway"),
        "groups.pair": ({"servers": ["a", "b"]}, None, "gateway"),
        "groups.solo": (None, {"servers": ["b"]}, "gateway"),
    }
    assert report["not_compared"] == []
    text = env.run("config", "diff")
    assert text.returncode == 0, text.stderr
    assert '* gateway.listen: "127.0.0.1:8799" -> "127.0.0.1:8800"  [gateway restart]' in text.stdout
    assert '* groups.pair: {"servers": ["a", "b"]} -> (unset)  [gateway restart]' in text.stdout
    assert '"threshold": 75}  [update in place]' in text.stdout
    assert "`mcpctl gateway restart` takes the change" in text.stdout
    assert "no differences" not in text.stdout
    assert "t-very-secret" not in text.stdout + json.dumps(report)

    env.config.write_text(CHANGED.replace('project = "tables-demo"', 'project = "tables-moved"'))
    moved = env.json("--project", "tables-demo", "config", "diff")  # the old project's history
    assert changes(moved)["project"] == ("tables-demo", "tables-moved", "state_dir")
    text = env.run("--project", "tables-demo", "config", "diff")
    assert '* project: "tables-demo" -> "tables-moved"  [new state dir]' in text.stdout
    assert "those running now stay in the old one" in text.stdout


def test_diff_of_two_equal_versions_says_no_differences(env: Env) -> None:
    env.config.write_text(FULL)
    assert env.run("apply").returncode == 0
    report = env.json("config", "diff")
    assert (report["servers"], report["global"], report["not_compared"]) == ([], [], [])
    assert env.run("config", "diff").stdout.endswith("no differences\n")


def test_import_preview_lists_gateway_and_group_changes(env: Env) -> None:
    env.config.write_text(FULL)
    source = env.workdir / "other.toml"
    source.write_text('[gateway]\nlisten = "127.0.0.1:9000"\n[groups.solo]\nservers = ["a"]\n')
    source.write_text(source.read_text() + '[servers.a]\ncommand = "a-server"\nenabled = false\n')
    before = env.config.read_bytes()
    preview = env.json("config", "import", str(source), "--dry-run")
    assert preview["changes"] == []  # server a is as it was
    assert changes(preview) == {
        "gateway.listen": ("127.0.0.1:8799", "127.0.0.1:9000", "gateway"),  # the imported [gateway], whole
        "gateway.tls_cert": ("certs/cert.pem", None, "gateway"),
        "gateway.tls_key": ("certs/key.pem", None, "gateway"),
        "gateway.allowed_origins": (["https://app.example.com"], [], "gateway"),
        "gateway.metrics_public": (True, False, "gateway"),
        "gateway.auto_start": (False, True, "gateway"),
        "groups.solo": (None, {"servers": ["a"]}, "gateway"),  # added by name; pair stays
    }
    text = env.run("config", "import", str(source), "--dry-run")
    assert '  * gateway.listen: "127.0.0.1:8799" -> "127.0.0.1:9000"  [gateway restart]' in text.stdout
    assert '  * groups.solo: (unset) -> {"servers": ["a"]}  [gateway restart]' in text.stdout
    assert env.config.read_bytes() == before
    done = env.run("config", "import", str(source))
    assert done.returncode == 0, done.stderr
    assert "groups.solo" in done.stdout  # the report says what it wrote
    assert written(env)["gateway"] == {"listen": "127.0.0.1:9000"}


def test_diff_against_a_version_recorded_without_gateway_and_groups(env: Env) -> None:
    """A schema-1 version kept no [gateway] or [groups]: they are not compared, never shown as removed."""
    applied_as_an_older_mcpctl_recorded_it(env)
    env.config.write_text(FULL.replace("threshold = 50", "threshold = 75"))
    report = env.json("config", "diff")
    assert report["not_compared"] == ["gateway", "groups"]  # project and home it recorded: compared
    assert list(changes(report)) == ["alerts.slow"]
    text = env.run("config", "diff").stdout
    assert "* gateway" not in text
    assert "* groups" not in text
    notes = [line for line in text.splitlines() if line.startswith("note: not compared")]
    assert notes == [
        "note: not compared: [gateway], [groups.*] (version 1 was recorded by an older mcpctl, which did not keep them)"
    ]
    env.config.write_text(FULL)
    assert env.run("config", "diff").stdout.endswith("no differences in what both recorded\n")
