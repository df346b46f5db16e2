"""`python -m mcpctl.shim NAME [NAME ...]`: how the CLI starts shims.

The specs come as a JSON list on stdin, one item per NAME: `{"spec": ..., "report": FD, "log": FD}`; the
state dir is $MCPCTL_HOME. One NAME: this process is that server's shim, reporting on fd 1 and logging
to fd 2. More: this process is a brood. It imports the shim once, forks a shim per server (each in its
own session, with that server's report pipe as fd 1 and log as fd 2), and exits. Fifty shims then cost
one interpreter start-up instead of fifty, and they share the pages of that one import: what a shim
never writes to, it never copies. Nothing on stdin: the CLI started this shim ahead of need and needed
none (`mcpctl.control.early`); it exits.

Each shim takes its instance lock (or says `busy` and exits), says `locked`, and runs until it is done.
`python -m mcpctl.shim NAME --foreground text|json` is `mcpctl run`: one shim, its spec alone on stdin.
"""

from __future__ import annotations

from mcpctl import lean  # first, before anything imports dataclasses (or pathlib, which imports ipaddress)

# isort: split
import contextlib
import gc
import importlib
import json
import os
import signal
import sys
from pathlib import Path

from mcpctl.hints import Any

# isort: split
from mcpctl.alerts import AlertRule
from mcpctl.constants import ENV_HOME, ENV_TEST_SIGNAL_AT_LOCK, ExitCode
from mcpctl.contract import Report, Spec
from mcpctl.errors import ErrorType, Failure, MCPCtlError
from mcpctl.logfile import MARK, LogWriter, stamp
from mcpctl.metrics import Sample
from mcpctl.paths import Paths
from mcpctl.privdir import open_own
from mcpctl.shim import signals
from mcpctl.shim.ledger import say
from mcpctl.shim.log import log, use_log
from mcpctl.shim.loop import Finished, Shim
from mcpctl.shim.monitor import Findings, spread_first_samples
from mcpctl.state import InstanceLock, StateRecord
from mcpctl.states import ServerState

USAGE = (
    "usage: python -m mcpctl.shim NAME [NAME ...]  (their specs as a JSON list on stdin)\n"
    "       python -m mcpctl.shim NAME --foreground text|json  (its spec as JSON on stdin)"
)


def main() -> int:
    args = sys.argv[1:]
    if len(args) == 3 and args[1] == "--foreground" and args[2] in ("text", "json"):
        return serve(Spec(**json.loads(_take_stdin())), log_format=args[2])
    if not args or any(arg.startswith("-") for arg in args):
        print(USAGE, file=sys.stderr)
        return 2
    lean.make(Spec, Paths, StateRecord, AlertRule)  # what every shim needs before it spawns its server
    given = _take_stdin()
    if not given:
        return 0
    items: list[dict[str, Any]] = json.loads(given)
    if len(items) == 1:
        return serve(Spec(**items[0]["spec"]))
    signals.libc_prctl()  # loaded once, here, for every shim of the brood
    # And what a shim needs once ready and when it stops: made once, shared, not once in each shim.
    lean.make(Sample, Findings, Failure, Finished)
    importlib.import_module("mcpctl.process")
    spread_first_samples()  # fifty shims becoming ready together: their first samples spread out
    for item in items:  # the state dir's directories, checked once for the brood (a failure: each shim says it)
        with contextlib.suppress(MCPCtlError):
            _paths(item["spec"].get("project")).ensure()
    gc.freeze()  # what the import made, the shims share: the collector must not touch it in each of them
    handed = [fd for item in items for fd in (item["report"], item["log"])]
    for item in items:
        try:
            pid = os.fork()
        except OSError as exc:  # this server's shim only: its report pipe closes unsaid, its log says why
            os.write(item["log"], f"{stamp()} {MARK} cannot fork a shim: {exc}\n".encode())
            continue
        if pid == 0:
            return _hatch(item, handed)  # this child is that server's shim from here on
    for fd in handed:
        os.close(fd)
    return 0


def _take_stdin() -> bytes:
    """What the CLI wrote on stdin; stdin is /dev/null from then on."""
    data = sys.stdin.buffer.read()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return data


def _hatch(item: dict[str, Any], handed: list[int]) -> int:
    """A forked child of a brood becomes the shim of `item`: its own session, its own pipes."""
    os.setsid()
    os.dup2(item["report"], 1)
    os.dup2(item["log"], 2)
    for fd in handed:
        os.close(fd)
    return serve(Spec(**item["spec"]))


def serve(spec: Spec, log_format: str | None = None) -> int:
    """Run the shim of `spec` until it is done; `log_format` set: in the foreground (`mcpctl run`)."""
    paths = _paths(spec.project)
    paths.ensure_server(spec.name)
    log_path = paths.log_file(spec.name)
    if log_format is not None:
        from mcpctl.shim import foreground  # `mcpctl run` only

        use_log(foreground.take_terminal(log_path, spec.log_max_bytes, spec.log_backups, log_format, spec.name))
    else:
        use_log(LogWriter(log_path, spec.log_max_bytes, spec.log_backups))
        stderr = open_own(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # what Python itself says
        os.dup2(stderr, 2)
        os.close(stderr)
        with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:  # Linux: what `ps` and
            comm.write(f"mcpctl:{spec.name}"[:15])  # `top` call it (brood shims share one command line)
    signals.catch_early()  # before the lock: from then on, a stop signal is a stop, never a silent death
    lock = InstanceLock(paths.instance_lock(spec.name))
    if not lock.acquire():
        if log_format is not None:
            log(f"{spec.name} is already running under another shim (its instance lock is held): not starting")
            return int(ExitCode.BUSY)
        say({"event": Report.BUSY})
        return 0
    _test_signal_at_lock()
    if log_format is None:
        say({"event": Report.LOCKED, "pid": os.getpid()})
    signals.become_subreaper()
    shim = Shim(paths, spec) if log_format is None else foreground.ForegroundShim(paths, spec)
    gc.freeze()  # what start-up made lives as long as the shim: the collector need never walk it again
    try:
        return shim.run()
    except Exception:  # noqa: BLE001 - a bug in the shim must still end the tree and say why
        import traceback

        log("internal error:\n" + traceback.format_exc())
        failure = Failure.of(ErrorType.INTERNAL, detail="the shim hit an internal error (see the log)")
        return shim.finish(ServerState.FAILED, failure).code


_PATHS: dict[str | None, Paths] = {}


def _paths(project: str | None) -> Paths:
    """The state dir's files for a shim of `project`: one Paths per project in a brood, so that the check
    of its directories (`Paths.ensure`), made before the brood forks, is not made again in each shim."""
    project = project or None
    if project not in _PATHS:
        _PATHS[project] = Paths(Path(os.environ[ENV_HOME]), project)
    return _PATHS[project]


def _test_signal_at_lock() -> None:
    """A test hook: a signal that arrives exactly when the lock is taken, not at a guessed moment."""
    name = os.environ.get(ENV_TEST_SIGNAL_AT_LOCK)
    if name:
        os.kill(os.getpid(), signal.Signals[name])


def leave(code: int) -> None:
    """Exit without the interpreter's teardown (~15 ms of CPU that frees what the kernel frees at once;
    fifty shims stopping together spent most of a second on it). All the shim writes is written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main())
