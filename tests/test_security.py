"""Security, tried as a local attacker would: a second, unprivileged user plants configs and directories;
secrets of every shape go through every command; a server writes terminal escapes and forged lines;
names are paths. Tests that need the second user are skipped (with the reason) when not run as root."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from tests.conftest import Env, tiny_server

LEAKY = Path(__file__).parent / "fixtures" / "leaky.py"
# One per xdist worker: a worker that made the user removes it when its session ends, while another may still
# be running tests as that user.
INTRUDER = "mcpctl-intruder" + os.environ.get("PYTEST_XDIST_WORKER", "")


@pytest.fixture(scope="session")
def intruder() -> Iterator[pwd.struct_passwd]:
    """A second, unprivileged user (made for the session, removed after it if we made it)."""
    if os.getuid() != 0:
        pytest.skip("needs root to create a second user (CI runs as root)")
    if shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("useradd/runuser not available")
    made = False
    try:
        pwd.getpwnam(INTRUDER)
    except KeyError:
        proc = subprocess.run(["useradd", "--system", "--no-create-home", INTRUDER], capture_output=True, check=False)
        made = proc.returncode == 0
        if proc.returncode not in (0, 9):  # 9: made meanwhile by another worker
            pytest.skip(f"useradd failed: {proc.stderr.decode(errors='replace').strip()}")
    yield pwd.getpwnam(INTRUDER)
    if made:
        subprocess.run(["userdel", INTRUDER], capture_output=True, check=False)


def as_intruder(*command: str) -> None:
    subprocess.run(["runuser", "-u", INTRUDER, "--", *command], check=True, capture_output=True)


def shared_dir(path: Path, mode: int = 0o1777) -> Path:
    path.mkdir(parents=True)
    path.chmod(mode)
    path.parent.chmod(0o755)  # the test's root (mkdtemp: 0700) must be reachable by the intruder
    return path


def planted_config(marker: Path) -> str:
    return f'[servers.evil]\ncommand = "/bin/sh"\nargs = ["-c", "id > {marker}"]\n'


def run_in(env: Env, cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcpctl", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **extra},
    )


# -- whose config runs -------------------------------------------------------------------------------


def test_a_config_planted_above_the_working_directory_is_refused(env: Env, intruder: pwd.struct_passwd) -> None:
    shared = shared_dir(env.home.parent / "shared")
    project = shared / "project"
    project.mkdir()  # root's own working directory, inside the shared one
    marker = env.home.parent / "pwned"
    plant = shared / "mcpctl.toml"
    subprocess.run(
        ["runuser", "-u", INTRUDER, "--", "sh", "-c", f"cat > {plant}"],
        input=planted_config(marker),
        text=True,
        check=True,
    )
    for args in (["start", "--all"], ["list"], ["status"]):
        proc = run_in(env, project, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert f"refusing the config file {plant}: it belongs to another user (uid {intruder.pw_uid})" in proc.stderr
        assert f"pass -f {plant} --trust" in proc.stderr
    assert not marker.exists()  # her command never ran
    assert "Traceback" not in proc.stderr


def test_a_config_in_a_world_writable_place_is_refused_even_when_it_is_ours(env: Env) -> None:
    shared = shared_dir(env.home.parent / "open", 0o777)
    marker = env.home.parent / "ran"
    (shared / "mcpctl.toml").write_text(planted_config(marker))
    proc = run_in(env, shared, "start", "--all")
    assert proc.returncode == 2
    assert f"others can change {shared}" in proc.stderr
    assert "pass -f" in proc.stderr
    own = env.write_config({"demo": tiny_server()})
    own.chmod(0o666)
    proc = env.run("list")
    assert proc.returncode == 2
    assert f"refusing the config file {own}: its group and others can write to it (mode 0o666)" in proc.stderr
    assert f"run `chmod go-w {own}`" in proc.stderr
    own.chmod(0o620)  # the group only: it was said to be "others", and the fix took from others what they lacked
    proc = env.run("list")
    assert f"refusing the config file {own}: its group can write to it (mode 0o620)" in proc.stderr
    assert f"hint: run `chmod g-w {own}`, or pass -f {own} explicitly" in proc.stderr
    own.chmod(0o602)
    proc = env.run("-f", str(own), "list")  # named explicitly, its group may write it: others may not
    assert f"refusing the config file {own}: others can write to it (mode 0o602)" in proc.stderr
    assert f"hint: run `chmod o-w {own}`\n" in proc.stderr
    assert not marker.exists()
    own.chmod(0o644)
    assert env.run("list").returncode == 0


def test_an_explicit_file_of_another_user_needs_trust(env: Env, intruder: pwd.struct_passwd) -> None:
    theirs = shared_dir(env.home.parent / "theirs") / "mcpctl.toml"
    theirs.write_text('[servers.demo]\ncommand = "true"\n')
    os.chown(theirs, intruder.pw_uid, intruder.pw_gid)
    proc = env.run("-f", str(theirs), "list")
    assert proc.returncode == 2
    assert "belongs to another user" in proc.stderr
    assert "if you trust its owner, pass --trust" in proc.stderr
    trusted = env.run("-f", str(theirs), "--trust", "list")
    assert trusted.returncode == 0, trusted.stderr
    assert "demo" in trusted.stdout


def test_an_env_file_of_another_user_is_refused(env: Env, intruder: pwd.struct_passwd) -> None:
    theirs = shared_dir(env.home.parent / "envs") / "keys.env"
    theirs.write_text("LD_PRELOAD=/tmp/evil.so\n")
    os.chown(theirs, intruder.pw_uid, intruder.pw_gid)
    env.write_config({"demo": tiny_server(env_file=str(theirs))})
    proc = env.run("start", "demo")
    assert proc.returncode == 2
    assert f"refusing the env_file of server 'demo' {theirs}: it belongs to another user" in proc.stderr
    assert "name that in env_file, or pass --trust" in proc.stderr
    assert "pass -f" not in proc.stderr  # -f would load the env file as the config
    assert env.our_processes() == []


def test_each_refusal_hint_says_what_works_for_that_kind_of_file(env: Env) -> None:
    keys = env.workdir / "keys.env"
    keys.write_text("A=1\n")
    keys.chmod(0o664)
    env.write_config({"demo": tiny_server(env_file=str(keys))})
    proc = env.run("list")
    assert proc.returncode == 2
    assert f"run `chmod g-w {keys}`, or pass --trust if you trust who can write it" in proc.stderr
    assert "pass -f" not in proc.stderr
    sticky = shared_dir(env.home.parent / "sticky")
    loose = sticky / "mcpctl.toml"  # ours, but directly in a directory everyone may add to
    loose.write_text('[servers.demo]\ncommand = "true"\n')
    proc = run_in(env, env.workdir, "list", MCPCTL_CONFIG=str(loose))
    assert proc.returncode == 2
    assert f"others can change {sticky}" in proc.stderr
    assert f"hint: move the file to a directory of your own, or pass -f {loose} explicitly" in proc.stderr
    assert "chmod" not in proc.stderr  # a shared sticky directory is meant to stay shared


def test_an_env_file_that_is_not_a_regular_file_is_refused_and_never_read(env: Env) -> None:
    env.write_config({"demo": tiny_server(env_file="/dev/zero")})
    proc = env.run("list")
    assert proc.returncode == 2
    assert "refusing the env_file of server 'demo' /dev/zero: it is not a regular file" in proc.stderr
    assert "hint: name a regular file in env_file" in proc.stderr
    for args in (["env", "check"], ["start", "demo"]):  # trusted, still not read for ever
        trusted = env.run("--trust", *args, timeout=30)
        assert trusted.returncode == 7, (args, trusted.stderr)
        assert "env_file /dev/zero: not a regular file" in trusted.stdout + trusted.stderr
    assert env.our_processes() == []


def test_stop_and_status_go_by_the_records_of_a_refused_config_without_reading_it(
    env: Env, intruder: pwd.struct_passwd
) -> None:
    config = env.write_config({"s": tiny_server()})
    elsewhere = env.home.parent / "elsewhere"
    elsewhere.mkdir()
    refused = f"warning: refusing the config file {config}: its group can write to it (mode 0o664); it was not read"
    for stop in (["stop", "w/s"], ["--project", "w", "stop", "--all"]):
        config.chmod(0o644)
        assert env.run("start", "s").returncode == 0
        config.chmod(0o664)
        status = run_in(env, elsewhere, "status", "w/s")
        assert status.returncode == 0, status.stderr
        assert status.stderr.splitlines() == [refused + ": stop and status go by the state dir's records"]
        assert "ready" in status.stdout
        stopped = run_in(env, elsewhere, *stop)
        assert stopped.returncode == 0, (stop, stopped.stderr)
        assert "--trust" not in stopped.stderr
        assert env.status("s")["state"] == "stopped"
    config.chmod(0o644)
    assert env.run("start", "s").returncode == 0
    config.write_text("this is not TOML [")  # swapped for another user's: were it read, it would not parse
    os.chown(config, intruder.pw_uid, intruder.pw_gid)
    for where in (env.workdir, elsewhere):
        status = run_in(env, where, "status", "w/s", "--json")
        assert status.returncode == 0, status.stderr
        assert "it belongs to another user" in status.stderr
        assert "it was not read" in status.stderr
    stopped = run_in(env, env.workdir, "stop", "s")
    assert stopped.returncode == 0, stopped.stderr
    assert "--trust" not in stopped.stderr
    assert "cannot parse" not in stopped.stderr
    assert env.our_processes() == []


def test_a_client_file_of_another_user_is_refused_and_never_rewritten(
    env: Env, intruder: pwd.struct_passwd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(env.home.parent))  # no client's user files
    project = shared_dir(env.home.parent / "atk", 0o755)
    (project / ".cursor").mkdir()
    planted = project / ".cursor" / "mcp.json"
    planted.write_text('{"mcpServers": {"evil": {"command": "sh", "args": ["-c", "id"]}}}')
    os.chown(planted, intruder.pw_uid, intruder.pw_gid)
    before = planted.read_bytes()
    user_config = Path(os.environ["XDG_CONFIG_HOME"]) / "mcpctl" / "mcpctl.toml"
    cursor = {c["id"]: c for c in json.loads(run_in(env, project, "client", "list", "--json").stdout)["clients"]}
    [listed] = [f for f in cursor["cursor"]["files"] if f["path"] == str(planted)]
    assert listed["refused"], listed
    assert listed["servers"] == 0
    assert "it belongs to another user" in listed["problem"]
    shown = run_in(env, project, "client", "list")
    assert "refused" in shown.stdout
    assert f"note: refusing the client config file {planted}: it belongs to another user" in shown.stderr
    setup = run_in(env, project, "client", "setup", "cursor")
    assert setup.returncode == 2, setup.stderr
    assert "hint: if you trust its owner, pass --trust" in setup.stderr
    assert not user_config.exists()  # nothing of hers became ours
    trusted = run_in(env, project, "--trust", "client", "setup", "cursor")
    assert trusted.returncode == 0, trusted.stderr
    assert "[servers.evil]" in user_config.read_text()
    assert "not rewritten: the file belongs to another user" in trusted.stderr
    assert planted.read_bytes() == before  # hers, untouched
    assert planted.stat().st_uid == intruder.pw_uid


def test_restore_never_writes_where_another_user_planted_a_link_since_the_setup(
    env: Env, intruder: pwd.struct_passwd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`client restore` writes a backup back only to a file that is still the user's: a symlink another user
    put in the client file's place since (pointing at a file of ours she wants overwritten) is refused."""
    monkeypatch.setenv("HOME", str(env.home.parent))
    project = shared_dir(env.home.parent / "proj", 0o755)
    (project / ".cursor").mkdir()
    client_file = project / ".cursor" / "mcp.json"
    client_file.write_text('{"mcpServers": {"t": {"command": "x"}}}')
    assert run_in(env, project, "client", "setup", "cursor").returncode == 0
    victim = env.home.parent / "victim.txt"
    victim.write_text("mine\n")
    client_file.unlink()
    client_file.symlink_to(victim)
    os.lchown(client_file, intruder.pw_uid, intruder.pw_gid)
    restored = run_in(env, project, "client", "restore", "cursor")
    assert restored.returncode == 2, restored.stderr
    assert "it is a symlink of another user" in restored.stderr
    assert victim.read_text() == "mine\n"  # not overwritten with the backup


def test_a_client_file_that_is_not_a_regular_file_is_never_read(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(env.home.parent))
    (env.workdir / ".cursor").mkdir()
    os.mkfifo(env.workdir / ".cursor" / "mcp.json")  # read for ever, were it read
    listed = env.run("client", "list", timeout=30)
    assert "it is not a regular file; it was not read" in listed.stderr
    for trusted in (["client", "list"], ["client", "setup", "cursor"]):
        proc = env.run("--trust", *trusted, timeout=30)
        assert proc.returncode in (0, 2), proc.stderr
    assert "cannot read: not a regular file" in proc.stderr


# -- whose directories become ours -----------------------------------------------------------------


def _long_home(env: Env) -> Path:
    """A state dir whose socket paths are too long for AF_UNIX, so sockets go to the runtime dir."""
    return env.home.parent / ("d" * 60) / ("e" * 40)


def test_a_precreated_or_symlinked_socket_dir_is_refused_and_nothing_is_chmodded(
    env: Env, intruder: pwd.struct_passwd
) -> None:
    env.write_config({"demo": tiny_server()})
    tmp = shared_dir(env.home.parent / "tmp")
    victim = env.home.parent / "victim"
    victim.mkdir(mode=0o755)
    runtime = tmp / f"mcpctl-{os.getuid()}"
    extra = {"MCPCTL_HOME": str(_long_home(env)), "TMPDIR": str(tmp), "XDG_RUNTIME_DIR": ""}

    as_intruder("ln", "-s", str(victim), str(runtime))
    proc = run_in(env, env.workdir, "start", "demo", **extra)
    assert proc.returncode == 1, proc.stderr
    assert f"refusing {runtime}: it is a symlink" in proc.stderr
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755  # never chmodded through the link
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o1777

    as_intruder("rm", str(runtime))
    as_intruder("mkdir", "-m", "0777", str(runtime))
    proc = run_in(env, env.workdir, "start", "demo", **extra)
    assert proc.returncode == 1
    assert f"refusing {runtime}: it belongs to another user (uid {intruder.pw_uid})" in proc.stderr
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o777

    as_intruder("rmdir", str(runtime))
    runtime.mkdir(mode=0o755)  # ours, but not private: refused, never changed
    proc = run_in(env, env.workdir, "start", "demo", **extra)
    assert proc.returncode == 1
    assert "has mode 0o755, not 0o700" in proc.stderr
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o755
    assert env.our_processes() == []


def test_a_long_state_path_puts_sockets_in_a_private_runtime_dir(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    runtime = env.home.parent / "xdg-run"
    runtime.mkdir(mode=0o700)
    extra = {"MCPCTL_HOME": str(_long_home(env)), "XDG_RUNTIME_DIR": str(runtime)}
    try:
        proc = run_in(env, env.workdir, "start", "demo", **extra)
        assert proc.returncode == 0, proc.stderr
        sockets = list((runtime / "mcpctl").glob("*.sock"))
        assert len(sockets) == 2  # the MCP socket and the control socket
        assert stat.S_IMODE((runtime / "mcpctl").stat().st_mode) == 0o700
        assert run_in(env, env.workdir, "ping", "demo", **extra).returncode == 0
    finally:
        run_in(env, env.workdir, "stop", "--all", **extra)


def test_when_only_the_control_socket_path_is_too_long_both_sockets_go_to_the_runtime_dir(env: Env) -> None:
    """`NAME.ctl.sock` is 4 bytes longer than `NAME.sock`: a state dir in that window put only the control
    socket in the runtime dir, which nothing had made, and the shim died binding it."""
    env.config.write_text('project = "p"\n' + tomli_w.dumps({"servers": {"demo": tiny_server()}}))
    base = env.home.parent / "w"
    pad = 99 - len(os.fsencode(base)) - 1 - len("/run/p/demo.sock")  # NAME.sock fits, NAME.ctl.sock does not
    home = base / ("h" * pad)
    assert len(os.fsencode(home / "run/p/demo.sock")) <= 100 < len(os.fsencode(home / "run/p/demo.ctl.sock"))
    runtime = env.home.parent / "xdg-fresh"
    runtime.mkdir(mode=0o700)  # its mcpctl/ folder does not exist yet: the start must make it
    extra = {"MCPCTL_HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    try:
        proc = run_in(env, env.workdir, "start", "demo", **extra)
        assert proc.returncode == 0, proc.stderr
        assert len(list((runtime / "mcpctl").glob("*.sock"))) == 2  # side by side
        assert run_in(env, env.workdir, "ping", "demo", **extra).returncode == 0
    finally:
        run_in(env, env.workdir, "stop", "--all", **extra)


def test_a_shared_home_is_refused_with_its_mode_unchanged(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    shared = shared_dir(env.home.parent / "sticky")
    proc = env.run("--home", str(shared), "start", "demo")
    assert proc.returncode == 1
    assert f"refusing {shared}: it is shared (mode 0o1777)" in proc.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    doctor = env.run("--home", str(shared), "doctor", "--fix")
    assert doctor.returncode == 1
    assert "is shared" in doctor.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert os.listdir(shared) == []
    foreign = env.home.parent / "photos"
    foreign.mkdir(mode=0o700)
    (foreign / "cat.jpg").write_bytes(b"meow")
    proc = env.run("--home", str(foreign), "start", "demo")
    assert proc.returncode == 1
    assert "is not empty and is not an mcpctl state directory" in proc.stderr
    assert sorted(os.listdir(foreign)) == ["cat.jpg"]
    assert env.our_processes() == []


READERS = (["status"], ["status", "demo"], ["check", "demo"], ["logs", "demo"], ["events", "demo"])


@pytest.mark.parametrize("kind", ["world-writable", "sticky", "someone's files"])
def test_commands_that_only_read_refuse_the_state_dir_start_refuses(env: Env, kind: str) -> None:
    """What others could plant in a shared state dir (here a log line that passes for mcpctl's own) is
    never read: the commands that only read refuse the dir as `start` does."""
    env.write_config({"demo": tiny_server()})
    home = env.home.parent / "state"
    if kind == "someone's files":
        home.mkdir(mode=0o700)
        (home / "cat.jpg").write_bytes(b"meow")
        reason = "is not empty and is not an mcpctl state directory"
    else:
        mode = 0o777 if kind == "world-writable" else 0o1777
        shared_dir(home, mode)
        logs = home / "projects" / "w" / "logs"
        logs.mkdir(parents=True)
        (logs / "demo.log").write_text("2026-12-03T14:00:00.000Z [mcpctl] planted line\n")
        reason = f"is shared (mode {oct(mode)}): its group and others can write to it"
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    for command in (["start", "demo"], *READERS):
        proc = env.run("--home", str(home), *command)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert f"refusing {home}: it {reason}" in proc.stderr, (command, proc.stderr)
        assert "planted" not in proc.stdout + proc.stderr, command
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before
    assert env.our_processes() == []
    shutil.rmtree(home)  # a state dir not made yet holds nothing to trust: they read nothing, and make nothing
    for command, code in zip(READERS, (0, 3, 3, 0, 0), strict=True):
        proc = env.run("--home", str(home), *command)
        assert proc.returncode == code, (command, proc.stdout, proc.stderr)
    assert not home.exists()


@pytest.mark.parametrize("where", ["home", "projects"])
def test_a_file_where_the_state_dir_has_a_folder_is_named_not_taken_for_a_bug(env: Env, where: str) -> None:
    env.write_config({"demo": tiny_server()})
    home = env.home.parent / "state"
    if where == "home":
        home.write_text("not a directory")
        blocked = home
    else:
        home.mkdir(mode=0o700)
        blocked = home / "projects"
        blocked.write_text("not a directory")
    for command in (["status"], ["status", "demo"], ["status", "-A"], ["gateway", "status"], ["start", "demo"]):
        proc = env.run("--home", str(home), *command)
        assert proc.returncode == 1, (command, proc.stderr)
        assert f"refusing {blocked}: it is not a directory" in proc.stderr, (command, proc.stderr)
        assert "internal error" not in proc.stderr
    answer = env.run("--home", str(home), "status", "--json")
    assert answer.returncode == 1
    assert "is not a directory" in json.loads(answer.stdout)["error"]["message"]
    assert blocked.read_text() == "not a directory"
    assert env.our_processes() == []


def test_missing_parents_are_made_private_whatever_the_umask(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    home = env.home.parent / "a" / "b" / "state"
    command = f"umask 000; exec {sys.executable} -m mcpctl --home {home} start demo"
    try:
        proc = subprocess.run(["sh", "-c", command], cwd=env.workdir, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        projects = home / "projects"
        made = (
            home.parent.parent,
            home.parent,
            home,
            projects,
            projects / "w" / "servers" / "demo",
            home / "run" / "w",
        )
        for directory in made:
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    finally:
        env.run("--home", str(home), "stop", "--all")


def test_doctor_finds_orphans_when_the_state_dir_is_named_through_a_symlink(env: Env) -> None:
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    link = env.home.parent / "state-link"
    link.symlink_to(env.home)
    planted = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "MCPCTL_HOME": str(link), "MCPCTL_INSTANCE": "0" * 32},
        start_new_session=True,
    )
    try:
        report = env.json("doctor", expect=6)
        assert [f["subject"] for f in report["findings"] if f["kind"] == "orphan"] == [str(planted.pid)]
        via_link = run_in(env, env.workdir, "doctor", "--json", MCPCTL_HOME=str(link))
        assert str(planted.pid) in via_link.stdout
    finally:
        planted.kill()
        planted.wait()


# -- nothing planted inside the state dir is read, written or followed ---------------------------------

FORGED = "2026-12-03T17:00:00.000Z [mcpctl] planted line\n"
EVERY_READER = (["status"], ["status", "demo"], ["logs", "demo"], ["events", "demo"], ["metrics", "demo"])
PLANTS = {  # where it is planted, and the commands that must refuse it (those that read there)
    "a symlinked logs folder": ("logs", [["logs", "demo"], ["start", "demo"]]),
    "a symlinked server folder": ("servers/demo", [*EVERY_READER[:2], *EVERY_READER[3:], ["check", "demo"]]),
    "another user's projects folder": ("..", [*EVERY_READER, ["check", "demo"], ["alerts"], ["start", "demo"]]),
    "another user's project tree": (".", [*EVERY_READER, ["check", "demo"], ["alerts"], ["start", "demo"]]),
}


FILES = ("events.jsonl", "metrics.jsonl", "instance.lock")


def _started_and_stopped(env: Env) -> Path:
    """The project's folder in the state dir, once `demo` has run there (its files all exist)."""
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    assert env.run("stop", "demo").returncode == 0
    return env.home / "projects" / "w"


def _chown_tree(top: Path, uid: int) -> None:
    for path in (top, *top.rglob("*")):
        os.chown(path, uid, -1, follow_symlinks=False)


@pytest.mark.parametrize("case", list(PLANTS))
def test_a_folder_planted_inside_the_state_dir_is_refused_by_readers_and_writers(
    env: Env, intruder: pwd.struct_passwd, case: str
) -> None:
    """Only the state dir itself was judged: a symlink or someone else's folder inside it was read (a
    forged line shown as mcpctl's own, exit 0), and `start` took someone else's projects/ folder."""
    where, commands = PLANTS[case]
    root = _started_and_stopped(env)
    planted = (root / where).resolve() if where in (".", "..") else root / where
    if where in (".", ".."):
        _chown_tree(planted, intruder.pw_uid)
    else:
        elsewhere = env.home.parent / "elsewhere"
        (root / where).rename(elsewhere)
        _chown_tree(elsewhere, intruder.pw_uid)
        planted.symlink_to(elsewhere)
    for log in (root / "logs", env.home.parent / "elsewhere"):
        if (log / "demo.log").is_file():
            (log / "demo.log").write_text(FORGED)
    for command in commands:
        proc = env.run(*command)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert f"refusing {planted}: it " in proc.stderr, (command, proc.stderr)
        assert "planted" not in proc.stdout, command
    report = env.json("doctor", expect=6)
    assert [f["subject"] for f in report["findings"] if f["kind"] == "planted"] == [str(planted)]
    assert env.our_processes() == []


def test_files_in_the_state_dir_are_never_written_or_read_through_a_symlink(
    env: Env, intruder: pwd.struct_passwd
) -> None:
    """The log, events, metrics and instance lock were opened with O_APPEND|O_CREAT and no O_NOFOLLOW:
    start and stop appended to another user's files through planted links, and `logs` showed their lines."""
    root = _started_and_stopped(env)
    victims = env.home.parent / "victims"
    victims.mkdir(mode=0o755)
    links = [root / "logs" / "demo.log", *(root / "servers" / "demo" / f for f in FILES)]
    for link in links:
        target = victims / link.name
        target.write_text(FORGED)
        target.chmod(0o666)
        os.chown(target, intruder.pw_uid, -1)
        link.unlink()
        link.symlink_to(target)
    for command in (["start", "demo"], ["stop", "demo"], ["logs", "demo"], ["events", "demo"]):
        proc = env.run(*command)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert "it is a symlink (mcpctl never follows one in its state dir)" in proc.stderr, (command, proc.stderr)
        assert "planted" not in proc.stdout
    assert all((victims / link.name).read_text() == FORGED for link in links)
    report = env.json("doctor", expect=6)
    assert sorted(f["subject"] for f in report["findings"] if f["kind"] == "planted") == sorted(map(str, links))
    assert env.run("doctor", "--fix").returncode == 0  # the links go; what they pointed to stays
    assert all((victims / link.name).read_text() == FORGED for link in links)
    assert env.run("start", "demo").returncode == 0
    assert env.run("stop", "demo").returncode == 0
    assert "planted" not in env.run("logs", "demo").stdout


@pytest.mark.parametrize("kind", ["parent", "tmpdir", "symlink"])
def test_a_state_dir_another_user_can_rename_or_swap_is_refused(
    env: Env, intruder: pwd.struct_passwd, kind: str
) -> None:
    """A state dir in another user's folder, a runtime dir in another user's $TMPDIR, and a state dir
    named through another user's symlink were all taken: that user could swap in a tree of their own."""
    env.write_config({"demo": tiny_server()})
    theirs = env.home.parent / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, intruder.pw_uid, -1)
    extra = {"MCPCTL_HOME": str(theirs / "state")}
    refused = theirs
    if kind == "tmpdir":
        extra = {"MCPCTL_HOME": str(_long_home(env)), "TMPDIR": str(theirs), "XDG_RUNTIME_DIR": ""}
    elif kind == "symlink":
        link = env.home.parent / "state-link"
        env.home.mkdir(mode=0o700)
        link.symlink_to(env.home)
        os.chown(link, intruder.pw_uid, -1, follow_symlinks=False)
        extra, refused = {"MCPCTL_HOME": str(link)}, link
    for command in (["start", "demo"], ["status", "demo"])[: 1 if kind == "tmpdir" else 2]:
        proc = run_in(env, env.workdir, *command, **extra)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert f"refusing {refused}" in proc.stderr, (command, proc.stderr)
    assert not (theirs / "state").exists()
    assert not list(theirs.glob("mcpctl-*"))
    assert env.our_processes() == []


def test_a_folder_above_the_state_dir_is_said_for_what_it_is_and_a_private_group_shares_nothing(
    env: Env, intruder: pwd.struct_passwd
) -> None:
    """Another user's folder above the state dir is said to be theirs; one of ours that a group with another
    member can write says to chmod it; one writable only by the user's own private group (umask 002 makes
    ~/.local so, on systems that give each user a group of their own) is no one else's and is accepted."""
    env.write_config({"demo": tiny_server()})
    theirs = env.home.parent / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, intruder.pw_uid, -1)
    proc = run_in(env, env.workdir, "status", MCPCTL_HOME=str(theirs / "state"))
    assert proc.returncode == 1, proc.stderr
    assert f"it belongs to another user (uid {intruder.pw_uid}), who can rename what is in it" in proc.stderr
    shared = env.home.parent / "shared"
    shared.mkdir(mode=0o700)
    shared.chmod(0o770)
    os.chown(shared, -1, intruder.pw_gid)  # a group the intruder is in
    proc = run_in(env, env.workdir, "status", MCPCTL_HOME=str(shared / "state"))
    assert proc.returncode == 1, proc.stderr
    assert "its group can write to it, and so rename what is in it (mode 0o770)" in proc.stderr  # not "others"
    assert f"run `chmod g-w {shared}`" in proc.stderr
    zh = run_in(env, env.workdir, "status", MCPCTL_HOME=str(shared / "state"), LANG="zh_CN.UTF-8").stderr
    assert "：其所属组可以写入它，从而重命名其中的内容（权限 0o770）\n" in zh, zh
    assert f"提示：请运行 `chmod g-w {shared}`，或请选择" in zh, zh
    if any(user.pw_gid == os.getgid() and user.pw_uid != os.getuid() for user in pwd.getpwall()):
        pytest.skip("another user has this user's primary group: it is no private group here")
    if set(grp.getgrgid(os.getgid()).gr_mem) - {pwd.getpwuid(os.getuid()).pw_name}:
        pytest.skip("this user's primary group has other members: it is no private group here")
    private = env.home.parent / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o775 & ~0o002)  # 0o770 by our own group only
    os.chown(private, -1, os.getgid())
    assert run_in(env, env.workdir, "start", "demo", MCPCTL_HOME=str(private / "state")).returncode == 0
    assert run_in(env, env.workdir, "stop", "demo", MCPCTL_HOME=str(private / "state")).returncode == 0


def test_a_shim_socket_is_never_connected_to_through_a_symlink(env: Env) -> None:
    """A socket path was connected to wherever a link there led: whoever planted it answered status and
    took the client's MCP traffic."""
    env.write_config({"demo": tiny_server()})
    assert env.run("start", "demo").returncode == 0
    run = env.home / "run" / "w"
    elsewhere = env.home.parent / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    for name in ("demo.sock", "demo.ctl.sock"):
        (run / name).rename(elsewhere / name)
        (run / name).symlink_to(elsewhere / name)
    for command in (["status", "demo"], ["ping", "demo"], ["tools", "demo"]):
        proc = env.run(*command)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        assert f"refusing {run}/demo" in proc.stderr, (command, proc.stderr)
        assert "it is a symlink" in proc.stderr, (command, proc.stderr)
    report = env.json("doctor", expect=6)
    assert sorted(f["subject"] for f in report["findings"]) == [str(run / "demo.ctl.sock"), str(run / "demo.sock")]


def test_a_folder_of_yours_that_others_can_read_is_refused_and_doctor_fix_makes_it_private(env: Env) -> None:
    logs = _started_and_stopped(env) / "logs"
    logs.chmod(0o755)
    proc = env.run("logs", "demo")
    assert proc.returncode == 1
    assert f"refusing {logs}: it has mode 0o755, not 0o700" in proc.stderr
    fixed = env.run("doctor", "--fix")
    assert fixed.returncode == 0, fixed.stdout
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert env.run("logs", "demo").returncode == 0
