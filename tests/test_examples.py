"""The examples stay true: every config loads, the amap one refuses a missing key before spawning, and
the CI and cron recipes use commands that exist, and the config blocks in README.md validate."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from mcpctl.cli.app import app
from mcpctl.config.load import load
from tests.conftest import Env

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_config_loads(path: Path) -> None:
    assert load(path).servers


def test_each_example_config_is_a_project_of_its_own() -> None:
    # Named after their folder, all were project "examples": one's `stop --all` stopped another's servers.
    projects = [load(path).project for path in sorted(EXAMPLES.glob("*.toml"))]
    assert "examples" not in projects
    assert len(set(projects)) == len(projects)


def test_one_examples_stop_all_leaves_anothers_server_running(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo's `python3` is meant to be the one that has mcpctl: this interpreter's.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    demo, amap = str(EXAMPLES / "mcpctl.toml"), str(EXAMPLES / "amap.toml")
    proc = env.run("-f", demo, "start", "demo")
    assert proc.returncode == 0, proc.stderr
    try:
        assert env.run("-f", amap, "stop", "--all").returncode == 0
        assert [s["name"] for s in env.json("-f", amap, "status")["servers"]] == ["amap-maps"]
        assert env.json("-f", demo, "status")["servers"][0]["state"] == "ready"
    finally:
        env.run("-f", demo, "stop", "--all")


README = EXAMPLES.parent / "README.md"
# A block the reader copies as a config file, unless the line before it is `<!-- not a config: WHY -->`.
README_BLOCK = re.compile(r"^(<!-- not a config: .* -->\n)?```(toml|json)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _readme_configs() -> list[Any]:
    text = README.read_text()
    found = README_BLOCK.finditer(text)
    blocks = [(text.count("\n", 0, m.start(2)) + 1, m[2], m[3]) for m in found if m[1] is None]
    return [pytest.param(line, suffix, body, id=f"line-{line}") for line, suffix, body in blocks]


@pytest.mark.parametrize(("line", "suffix", "text"), _readme_configs())
def test_readme_config_blocks_validate_as_written(env: Env, line: int, suffix: str, text: str) -> None:
    config = env.workdir / f"readme-{line}.{suffix}"
    config.write_text(text)
    proc = env.run("-f", str(config), "config", "validate")
    assert proc.returncode == 0, f"README.md line {line}: {proc.stderr}"


def test_the_container_build_leaves_the_venv_and_git_out_for_podman_and_docker() -> None:
    root = EXAMPLES.parent
    podman, docker = (root / ".containerignore").read_text(), (root / ".dockerignore").read_text()
    assert podman == docker
    patterns = {line for line in podman.splitlines() if line and not line.startswith("#")}
    assert {"**/.venv", ".git", "**/__pycache__"} <= patterns
    assert not {"mcpctl", "README.md", "pyproject.toml", "setup.py", "examples"} & patterns  # what the build uses


def test_public_servers_example_has_the_servers_it_promises() -> None:
    servers = load(EXAMPLES / "public-servers.toml").servers
    assert set(servers) == {"time", "filesystem", "memory", "playwright"}
    assert servers["playwright"].startup_timeout >= 120
    assert servers["time"].command == "uvx"


def test_amap_without_its_key_is_refused_before_spawning(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMAP_MAPS_API_KEY", raising=False)
    config = str(EXAMPLES / "amap.toml")
    proc = env.run("-f", config, "start", "amap-maps")
    assert proc.returncode == 7, proc.stderr
    assert proc.stderr.startswith("error: amap-maps: ")
    assert "AMAP_MAPS_API_KEY" in proc.stderr
    assert "shorter than" not in proc.stderr  # a missing key is reported once, not again by its rules
    assert env.our_processes() == []
    status = env.json("-f", config, "status", "amap-maps", expect=3)["servers"][0]
    assert (status["state"], status["pid"], status["total_failures"]) == ("stopped", None, 0)


def _mcpctl_commands(text: str) -> list[str]:
    """The subcommand of every `mcpctl [global options] SUB` in a recipe."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]  # prose is left out
    found = re.findall(r"\bmcpctl((?:[ \t]+(?:-f|--config|--home)[ \t]+\S+)*)[ \t]+([a-z][a-z-]*)", "\n".join(lines))
    return [sub for _, sub in found]


@pytest.mark.parametrize("name", ["github-actions.yml", "crontab"])
def test_recipes_use_commands_that_exist(name: str) -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    used = _mcpctl_commands((EXAMPLES / name).read_text())
    assert "check" in used
    assert set(used) <= commands, set(used) - commands


def test_github_actions_recipe_starts_checks_and_always_stops() -> None:
    text = (EXAMPLES / "github-actions.yml").read_text()
    for command in ("mcpctl start", "mcpctl check", "mcpctl stop --all", "if: always()"):
        assert command in text
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: the text checks above still ran")
    steps = yaml.safe_load(text)["jobs"]["integration"]["steps"]
    last = steps[-1]
    assert (last["if"], last["run"]) == ("always()", "mcpctl stop --all")
    assert any(str(step.get("run", "")).startswith("mcpctl start") for step in steps)


def test_crontab_lines_have_five_time_fields() -> None:
    entries = [line for line in (EXAMPLES / "crontab").read_text().splitlines() if line.startswith("*/")]
    assert entries
    for entry in entries:
        fields = entry.split(maxsplit=5)
        assert len(fields) == 6
        assert fields[5].startswith("mcpctl check")
