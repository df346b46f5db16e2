"""`mcpctl doctor`: find what is wrong in the state dir and among our processes, and repair what is safe.

Each check returns findings; a finding knows whether it can be repaired and how. Repairs never touch
anything a live shim owns: orphans are processes tagged with this state dir whose run has no live shim.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import field
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from mcpctl import process
from mcpctl.constants import ENV_HOME, ENV_INSTANCE, STATE_LOCK_TIMEOUT
from mcpctl.control import projects
from mcpctl.control.observe import observe, put_right
from mcpctl.errors import MCPCtlError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.logfile import escape
from mcpctl.paths import Paths
from mcpctl.privdir import check_home, read_own
from mcpctl.state import (
    CORRUPT,
    UNREADABLE,
    CorruptState,
    lock_holder,
    read_record,
    set_aside,
    state_lock,
    write_atomic,
    write_record,
)

ORPHAN_STOP_TIMEOUT = 3.0
# What a finding says (English: --json carries it); KNOWN lets `mcpctl doctor` show it translated.
NOT_REPAIRED = N_("could not repair: {error}")
MODE_SET, READABLE = N_("mode set to 0o700"), N_("mode {mode}: others can read it")
MISMATCH = N_("the record says a shim runs it, but none does")  # of the finding's subject, a server
KEPT, TRUE_NOW = N_(" (the damaged file is kept as {file})"), N_("nothing to do: the record is true now")
REBUILT = N_("record rebuilt from the running processes{kept}")
ORPHANED = N_("pid {pid} ({command}) belongs to a server run whose shim is gone")
SURVIVED, ENDED = N_("pid {pid} survived SIGKILL"), N_("ended (SIGTERM, then SIGKILL if needed)")
ZOMBIE = N_("pid {pid} exited but its parent (pid {parent}) has not reaped it; {remedy}")
REAP_ORPHAN = N_("ending the orphaned parent lets init reap it")
REAP_RESTART = N_("`mcpctl restart` of its server clears it")
NOT_A_LOCK = N_("a {kind} where mcpctl's state lock file belongs: remove it (mcpctl makes it again)")
LINK = N_("a symlink in the state dir (mcpctl makes none, and follows none): every command refuses it")
LINK_REMOVED = N_("the link removed (not what it pointed to); mcpctl makes its own again")
FOREIGN = N_("belongs to another user (uid {uid}): every command refuses it; move it out of the state dir")
STALE, REMOVED = N_("{name}: no shim listens on it"), N_("removed")
GATEWAY_DOWN, MARKED = N_("gateway: the record says {state} but no gateway process runs"), N_("record marked stopped")
ORPHANED_RECORD = N_("its config file {file} is gone (`mcpctl forget {label}` once stopped)")
KNOWN: tuple[str, ...] = (NOT_REPAIRED, READABLE, KEPT, REBUILT, ORPHANED, SURVIVED, ZOMBIE, NOT_A_LOCK, STALE)
KNOWN += (GATEWAY_DOWN, ORPHANED_RECORD, CORRUPT, UNREADABLE)
KNOWN += (LINK, FOREIGN)


@dataclass
class Finding(Record):
    """One problem doctor found, and the repair it can make."""

    # planted | permissions | lock | config | corrupt_file | state_mismatch | stale_socket | orphan | zombie | orphaned
    kind: str
    subject: str  # a server name, a path or a pid
    detail: str
    repair: Callable[[], str] | None = None  # does the repair and says what it did
    outcome: str = ""  # what the repair did, or why it failed
    fixed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "fixable": self.repair is not None,
            "fixed": self.fixed,
            "outcome": self.outcome or None,
        }


@dataclass
class Doctor(Record):
    """The state dir's examination: what is wrong, and the repairs."""

    paths: Paths
    names: list[str]  # configured servers plus those the state dir knows
    config_problem: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def examine(self) -> list[Finding]:
        self.findings = []
        if not self.paths.home.exists():
            return self.findings
        self._permissions()
        self._planted()
        if self.findings:  # every other check reads what was planted, which is refused
            return self.findings
        self._lock()
        if self.config_problem:
            self.findings.append(Finding("config", "config", self.config_problem))
        for name in self.names:
            self._state(name)
            for path in (self.paths.socket(name), self.paths.control_socket(name)):
                self._socket(name, path)
        self._orphaned()
        self._processes()
        self._gateway()
        return self.findings

    def fix(self) -> None:
        check_home(self.paths.home)  # a shared or foreign directory is refused, never repaired
        with state_lock(self.paths.lock, STATE_LOCK_TIMEOUT):  # repairs must not race a start or a stop
            self._fix()

    def _fix(self) -> None:
        for finding in self.findings:
            if finding.repair is None:
                continue
            try:
                finding.outcome = finding.repair()
                finding.fixed = True
            except (OSError, psutil.Error, MCPCtlError) as exc:
                finding.outcome = NOT_REPAIRED.format(error=exc)

    # -- checks --------------------------------------------------------------------------------

    def _lock(self) -> None:
        """The state lock's file, which every change takes: anything but a file there stops them all.
        Reported, not removed: what it is, and whose, is for a person to see."""
        try:
            mode = self.paths.lock.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISREG(mode):
            kind = "directory" if stat.S_ISDIR(mode) else "symlink" if stat.S_ISLNK(mode) else "special file"
            self.findings.append(Finding("lock", str(self.paths.lock), NOT_A_LOCK.format(kind=kind)))

    def _permissions(self) -> None:
        """A state dir others can read (one they can write to, or someone else's, was refused before the
        command read it: `privdir.judge_home`)."""
        home = self.paths.home
        info = home.stat()
        if stat.S_IMODE(info.st_mode) & 0o077:
            mode = oct(stat.S_IMODE(info.st_mode))

            def private() -> str:
                home.chmod(0o700)
                return MODE_SET

            self.findings.append(Finding("permissions", str(home), READABLE.format(mode=mode), private))

    def _planted(self) -> None:
        """Anywhere in the state dir: a symlink, someone else's file or folder, a folder others can read.
        Every command refuses them (`privdir`); --fix removes a link and makes a folder of ours private,
        and leaves someone else's things where they are (whose they are is for a person to see)."""
        for path, info in _entries(self.paths.home):
            if stat.S_ISLNK(info.st_mode):
                self.findings.append(Finding("planted", str(path), LINK, partial(_unlink, path)))
            elif info.st_uid != os.getuid():
                self.findings.append(Finding("planted", str(path), FOREIGN.format(uid=info.st_uid)))
            elif path == self.paths.lock:
                continue  # a folder where the state lock belongs: `_lock` says what to do with it
            elif stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
                detail = READABLE.format(mode=oct(stat.S_IMODE(info.st_mode)))
                self.findings.append(Finding("permissions", str(path), detail, partial(_private, path)))

    def _state(self, name: str) -> None:
        path = self.paths.state_file(name)
        try:
            read_record(path)
        except CorruptState as exc:
            self.findings.append(Finding("corrupt_file", str(path), str(exc), lambda: self._rebuild(name, True)))
            return
        if lock_holder(self.paths.instance_lock(name)) is not None:
            return  # a live shim keeps its own record true
        if observe(self.paths, name).needs_repair:
            self.findings.append(Finding("state_mismatch", name, MISMATCH, lambda: self._rebuild(name, False)))

    def _rebuild(self, name: str, corrupt: bool) -> str:
        path = self.paths.state_file(name)
        kept = ""
        if corrupt and path.exists():
            kept = KEPT.format(file=set_aside(path).name)
        obs = observe(self.paths, name)
        if corrupt:
            write_record(path, obs.record)
        elif not put_right(self.paths, obs):
            return TRUE_NOW
        return REBUILT.format(kept=kept)

    def _socket(self, name: str, path: Path) -> None:
        if not path.exists() or lock_holder(self.paths.instance_lock(name)) is not None:
            return
        if _listening(path):
            return  # somebody answers there: not ours to remove

        def remove() -> str:
            path.unlink(missing_ok=True)
            return REMOVED

        self.findings.append(Finding("stale_socket", str(path), STALE.format(name=name), remove))

    def _gateway(self) -> None:
        """A gateway record that says it runs while no gateway holds its lock (killed with -9, say)."""
        path = self.paths.gateway_file("state.json")
        try:
            record = json.loads(read_own(path))
        except (OSError, ValueError):
            return
        if not isinstance(record, dict) or record.get("state") in ("stopped", None):
            return
        if lock_holder(self.paths.gateway_file("instance.lock")) is not None:
            return

        def mark_stopped() -> str:
            write_atomic(path, json.dumps({**record, "state": "stopped", "stopped_at": time.time()}).encode())
            return MARKED

        detail = GATEWAY_DOWN.format(state=record.get("state"))
        self.findings.append(Finding("state_mismatch", str(path), detail, mark_stopped))

    def _processes(self) -> None:
        live, shims = self._live_instances()
        home = os.path.realpath(self.paths.home)  # the state dir may be named through a symlink, here or there
        uid = os.getuid()
        orphans: list[psutil.Process] = []
        ours: list[psutil.Process] = []
        for proc in psutil.process_iter(["uids", "ppid"]):
            if proc.pid == os.getpid() or proc.info["uids"] is None or proc.info["uids"].real != uid:
                continue
            try:
                environ = proc.environ()
            except (psutil.Error, OSError):
                continue
            if os.path.realpath(environ.get(ENV_HOME) or "/nonexistent") != home:
                continue
            ours.append(proc)
            instance = environ.get(ENV_INSTANCE)
            if instance and instance not in live and not _under(proc, shims):
                orphans.append(proc)
        for proc in orphans:
            self.findings.append(self._orphan(proc))
        self._zombies(ours, {p.pid for p in orphans})

    def _orphaned(self) -> None:
        """Records of any project whose config file is gone: reported, never stopped or removed here."""
        for paths in projects.every(self.paths.home):
            for record in projects.records(paths):
                if projects.orphaned(record):
                    label = f"{paths.project}/{record.name}" if paths.project else record.name
                    detail = ORPHANED_RECORD.format(file=record.config_file, label=label)
                    self.findings.append(Finding("orphaned", label, detail))

    def _live_instances(self) -> tuple[set[str], set[int]]:
        """Instance ids of the runs whose shim is alive (a shim holds the instance lock), and those shims'
        pids, in every project of the state dir (another project's live run is no orphan)."""
        live, shims = set(), set()
        every = [self.paths, *projects.every(self.paths.home)]
        for paths, name in {(p, name) for p in every for name in p.known_servers()}:
            holder = lock_holder(paths.instance_lock(name))
            if holder is None:
                continue
            shims.add(holder)
            with contextlib.suppress(CorruptState):
                record = read_record(paths.state_file(name))
                if record is not None and record.instance_id:
                    live.add(record.instance_id)
        return live, shims

    def _orphan(self, proc: psutil.Process) -> Finding:
        try:
            # Anyone can name a process anything (`exec -a`): its command line is escaped as a server's
            # log text is, so it can neither drive the terminal nor forge a line of the report.
            command = escape(" ".join(proc.cmdline())[:100])
        except psutil.Error:
            command = "?"
        detail = ORPHANED.format(pid=proc.pid, command=command)

        def end() -> str:
            survivors = process.end_processes([proc], ORPHAN_STOP_TIMEOUT)
            if survivors:
                raise OSError(SURVIVED.format(pid=proc.pid))
            return ENDED

        return Finding("orphan", str(proc.pid), detail, end)

    def _zombies(self, ours: list[psutil.Process], orphans: set[int]) -> None:
        for parent in ours:
            try:
                children = parent.children()
            except psutil.Error:
                continue
            for child in children:
                with contextlib.suppress(psutil.Error):
                    if child.status() != psutil.STATUS_ZOMBIE:
                        continue
                    remedy = REAP_ORPHAN if parent.pid in orphans else REAP_RESTART
                    detail = ZOMBIE.format(pid=child.pid, parent=parent.pid, remedy=remedy)
                    self.findings.append(Finding("zombie", str(child.pid), detail))


def _under(proc: psutil.Process, shims: set[int]) -> bool:
    """Whether a live shim is among the process's ancestors (a run whose record is not written yet)."""
    try:
        return any(parent.pid in shims for parent in proc.parents())
    except psutil.Error:
        return False


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _entries(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Everything under `folder`, each with its lstat; never into a symlink or someone else's folder."""
    try:
        found = list(os.scandir(folder))
    except OSError:
        return
    for entry in found:
        info = entry.stat(follow_symlinks=False)
        yield Path(entry.path), info
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            yield from _entries(Path(entry.path))


def _unlink(path: Path) -> str:
    path.unlink()  # the link itself: what it points to is someone else's, and stays
    return LINK_REMOVED


def _private(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)  # chmod's follow_symlinks=False: not on 3.11
    try:
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return MODE_SET
