"""`python -m mcpctl.shim NAME`: how the CLI starts a shim.

Its spec comes as JSON on stdin; it takes the instance lock (or says `busy` and exits), says `locked`,
and runs the shim until it is done.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
from pathlib import Path

from mcpctl import lean  # noqa: F401 - first, before anything imports dataclasses

# isort: split
from mcpctl.constants import ENV_HOME, ENV_TEST_SIGNAL_AT_LOCK, ExitCode
from mcpctl.contract import Report, Spec
from mcpctl.errors import ErrorType, Failure
from mcpctl.logfile import LogWriter
from mcpctl.paths import Paths
from mcpctl.shim import signals
from mcpctl.shim.ledger import say
from mcpctl.shim.log import log, use_log
from mcpctl.shim.loop import Shim
from mcpctl.state import InstanceLock
from mcpctl.states import ServerState


def main() -> int:
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2:3] != ["--foreground"]):
        print("usage: python -m mcpctl.shim NAME [--foreground text|json]  (spec as JSON on stdin)", file=sys.stderr)
        return 2
    log_format = sys.argv[3] if len(sys.argv) == 4 else None  # set: `mcpctl run`, in the foreground
    spec = Spec(**json.loads(sys.stdin.buffer.read()))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    paths = Paths(Path(os.environ[ENV_HOME]), spec.project or None)
    paths.ensure_server(spec.name)
    log_path = paths.log_file(spec.name)
    if log_format is not None:
        from mcpctl.shim import foreground  # `mcpctl run` only

        use_log(foreground.take_terminal(log_path, spec.log_max_bytes, spec.log_backups, log_format, spec.name))
    else:
        use_log(LogWriter(log_path, spec.log_max_bytes, spec.log_backups))
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


def _test_signal_at_lock() -> None:
    """A test hook: a signal that arrives exactly when the lock is taken, not at a guessed moment."""
    name = os.environ.get(ENV_TEST_SIGNAL_AT_LOCK)
    if name:
        os.kill(os.getpid(), signal.Signals[name])


if __name__ == "__main__":
    sys.exit(main())
