"""Shell completions: the checked-in files are what the generator writes, and each shell really completes
subcommands, options and server names from the config (with -f/--config on the line passed through)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Env

COMPLETIONS = Path(__file__).parent.parent / "completions"
# `mcpctl` as the completion scripts run it: the one installed next to this interpreter.
PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

SCENARIOS = [
    ("mcpctl st", ["start", "status", "stop"]),
    ("mcpctl env rule ", ["add", "rm"]),
    ("mcpctl start --a", ["--all"]),
    ("mcpctl start ", ["alpha", "beta"]),  # ./mcpctl.toml
    ("mcpctl start alpha ", ["beta"]),  # a name already given is not offered again
    ("mcpctl -f other.toml stop ", ["gamma"]),
    ("mcpctl --config=other.toml status g", ["gamma"]),
    ("mcpctl env rule add ", ["alpha", "beta"]),
    ("mcpctl -f broken.toml start ", []),  # a broken config completes nothing, quietly
    ("mcpctl config export --format ", ["json", "toml"]),
    ("mcpctl run alpha --log-format ", ["json", "text"]),
]


def _generate(*args: str, cwd: Path = COMPLETIONS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(cwd / "generate.py"), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_checked_in_completions_are_current() -> None:
    proc = _generate("--check")
    assert proc.returncode == 0, proc.stderr


def test_check_names_a_stale_file_in_one_line(tmp_path: Path) -> None:
    copy = shutil.copytree(COMPLETIONS, tmp_path / "completions", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "mcpctl.fish").write_text("# edited by hand\n")
    proc = _generate("--check", cwd=copy)
    assert proc.returncode == 1
    assert proc.stderr == "completions/mcpctl.fish is out of date: run `python completions/generate.py`\n"
    assert _generate(cwd=copy).returncode == 0
    assert _generate("--check", cwd=copy).returncode == 0


def _bash(line: str, cwd: Path) -> list[str]:
    words = line.split(" ")
    script = f'source {COMPLETIONS / "mcpctl.bash"}; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _mcpctl; '
    script += 'printf "%s\\n" "${COMPREPLY[@]}"'
    return _run(["bash", "--norc", "--noprofile", "-c", script, "bash", *words], cwd)


def _fish(line: str, cwd: Path) -> list[str]:
    script = f"source {COMPLETIONS / 'mcpctl.fish'}; complete -C {_fish_quote(line)}"
    return [match.split("\t")[0] for match in _run(["fish", "--no-config", "-c", script], cwd)]


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _run(argv: list[str], cwd: Path) -> list[str]:
    proc = subprocess.run(
        argv, cwd=cwd, env={**os.environ, "PATH": PATH}, capture_output=True, text=True, check=False, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return sorted(filter(None, proc.stdout.splitlines()))


def _zsh(line: str, cwd: Path) -> list[str]:
    """Type LINE and TAB into an interactive zsh on a pty; a wrapped compadd records the matches."""
    matches, ready, done = cwd / ".matches", cwd / ".ready", cwd / ".done"
    setup = (
        f"PS1='> '; fpath=({COMPLETIONS} $fpath); autoload -Uz compinit; compinit -u -D\n"
        'compadd() { if (( ${@[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi; local -a found; '
        f'builtin compadd -O found "$@"; print -rl -- $found >> {matches}; builtin compadd "$@"; }}\n'
        f"_recorded() {{ _main_complete; print done > {done} }}; zle -C recorded .complete-word _recorded\n"
        f"bindkey '^I' recorded; print ready > {ready}\n"
    )
    master, slave = pty.openpty()
    env = {**os.environ, "PATH": PATH, "HOME": str(cwd)}
    proc = subprocess.Popen(
        ["zsh", "-f", "-i"], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True
    )
    os.close(slave)
    try:
        os.write(master, setup.encode())
        _read_until(master, lambda seen: ready.exists() and ZLE_READING in seen.rpartition(b"print ready")[2])
        os.write(master, f"{line}\t".encode())
        _read_until(master, lambda _: done.exists())
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return sorted(set(matches.read_text().split())) if matches.exists() else []


ZLE_READING = b"\x1b[?2004h"  # zle turns bracketed paste on when it starts reading a line


def _read_until(master: int, condition: Callable[[bytes], bool], timeout: float = 20.0) -> None:
    """Read the terminal (so zsh never blocks writing to it) until the condition holds."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not condition(seen):
        if time.monotonic() > deadline:
            pytest.fail(f"zsh did not get there: {seen[-800:].decode(errors='replace')}")
        if select.select([master], [], [], 0.05)[0]:
            seen += os.read(master, 65536)


SHELLS: dict[str, Callable[[str, Path], list[str]]] = {"bash": _bash, "fish": _fish, "zsh": _zsh}


@pytest.mark.parametrize("shell", list(SHELLS))
@pytest.mark.parametrize(("line", "expected"), SCENARIOS)
def test_shell_completes(env: Env, shell: str, line: str, expected: list[str]) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    env.write_config({"alpha": {"command": "x"}, "beta": {"command": "y"}})
    (env.workdir / "other.toml").write_text('[servers.gamma]\ncommand = "z"\n')
    (env.workdir / "broken.toml").write_text("[servers.a\n")
    assert SHELLS[shell](line, env.workdir) == expected


@pytest.mark.parametrize("shell", list(SHELLS))
@pytest.mark.parametrize(
    ("line", "expected"),
    [("mcpctl start ", ["alpha", "beta"]), ("mcpctl check ", ["alpha", "beta"]), ("mcpctl stop --a", ["--all"])],
)
def test_files_in_the_directory_do_not_change_what_completes(
    env: Env, shell: str, line: str, expected: list[str]
) -> None:
    # bash's walker split `server*` (a positional's kind) unquoted, so a ./server.py globbed it away.
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    env.write_config({"alpha": {"command": "x"}, "beta": {"command": "y"}})
    for name in ("server.py", "text", "--all.log"):
        (env.workdir / name).write_text("")
    assert SHELLS[shell](line, env.workdir) == expected
