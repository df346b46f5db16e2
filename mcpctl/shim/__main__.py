"""`python -m mcpctl.shim NAME`: how the CLI starts a shim.

Its spec comes as JSON on stdin; it takes the instance lock (or says `busy` and exits), says `locked`,
and runs the shim until it is done.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from mcpctl.constants import ENV_HOME, ENV_TEST_SIGNAL_AT_LOCK
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
    if len(sys.argv) != 2:
        print("usage: python -m mcpctl.shim NAME  (spec as JSON on stdin; started by mcpctl)", file=sys.stderr)
        return 2
    spec = Spec(**json.loads(sys.stdin.buffer.read()))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    paths = Paths(Path(os.environ[ENV_HOME]), spec.project or None)
    paths.ensure_server(spec.name)
    use_log(LogWriter(paths.log_file(spec.name), spec.log_max_bytes, spec.log_backups))
    signals.catch_early()  # before the lock: from then on, a stop signal is a stop, never a silent death
    lock = InstanceLock(paths.instance_lock(spec.name))
    if not lock.acquire():
        say({"event": Report.BUSY})
        return 0
    _test_signal_at_lock()
    say({"event": Report.LOCKED, "pid": os.getpid()})
    signals.become_subreaper()
    shim = Shim(paths, spec)
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
