"""What the control requests that change no state at once do to the shim (`control_requests.Controlled`).

A retry or a restart is only noted here: the loop acts on it at its next step, by the table in `machine`,
so the CLI has its answer before the server is touched.
"""

from __future__ import annotations

from mcpctl.clock import Clock
from mcpctl.contract import Control, Spec
from mcpctl.errors import Failure
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.redaction import Redactor
from mcpctl.shim import machine, signals
from mcpctl.shim.ledger import Ledger
from mcpctl.shim.log import log, retune_log
from mcpctl.shim.machine import Happening
from mcpctl.shim.monitor import Watch
from mcpctl.shim.session import Session
from mcpctl.states import RUNNING, ServerState

if TYPE_CHECKING:
    from mcpctl.shim.control_requests import ControlChannel

_JOINS = frozenset({Control.RESTART})  # answered too while a restart in place ends the old tree


class Requested:
    """Part of `loop.Shim`: the answers to status, stop, retry, restart and update, and to a stop signal."""

    spec: Spec
    clock: Clock
    ledger: Ledger
    session: Session
    watch: Watch
    redact: Redactor
    stop_requested: bool
    restart_to: Spec | None
    retry_at: float
    manual: bool
    control: ControlChannel | None
    if TYPE_CHECKING:  # the loop's

        def _enter(self, state: ServerState) -> None: ...

        def _reap(self) -> None: ...

        def finish(self, final: ServerState, failure: Failure | None) -> object: ...

    def stop(self) -> None:
        self.stop_requested = True
        if self.ledger.record.state in RUNNING:
            self._enter(ServerState.STOPPING)

    def _meanwhile(self, timeout: float, also: frozenset[str] = frozenset()) -> None:
        """While a run's processes end (the loop waits on them): sleep up to `timeout` seconds, woken by a
        signal, answering `status` and `stop` (a slow server's end must not make the shim unresponsive to
        them) and `also`, and reap. A stop signal that came meanwhile is what `status` says from now on."""
        if self.control is not None:
            self.control.serve_while(timeout, also)
        else:
            signals.pause(timeout)
        self._reap()
        if self.stop_requested and self.ledger.record.state in RUNNING:
            self._enter(ServerState.STOPPING)

    def _restarting(self, timeout: float) -> None:
        """`_meanwhile` of a restart in place: a restart asked while the old tree ends is answered too."""
        self._meanwhile(timeout, _JOINS)

    def _joined(self, spec: Spec) -> Spec | None:
        """What a restart in place starts once the old tree has ended: the spec asked last (a restart asked
        meanwhile joined it, as its new run was not spawned yet); or nothing when a stop was asked
        meanwhile: the stop wins, and the shim finishes."""
        spec, self.restart_to = self.restart_to or spec, None
        if not self.stop_requested:
            return spec
        self.finish(ServerState.STOPPED, None)
        return None

    def _on_stop_signal(self) -> None:
        self.stop_requested = True  # a signal handler only sets the flag: the loop acts on it

    def _redacted(self, failure: Failure | None) -> Failure | None:
        return Failure(failure.type, self.redact(failure.message), failure.hint) if failure is not None else None

    def status(self, save: bool) -> dict[str, Any]:
        if save:  # not for every asker: fifty shims rewriting their files made `status` ~25 ms slower
            self.ledger.write()
        return self.ledger.record.to_json()

    def retry_now(self, spec: Spec | None = None) -> int:
        record = self.ledger.record
        if record.state != ServerState.BACKOFF:
            return record.attempt
        if spec is not None:  # the next run is by the config as it is now, not the one that failed
            self.take(spec)
            self.ledger.amend(config_hash=spec.config_hash)
        self.retry_at, self.manual = self.clock.monotonic(), True
        return record.attempt + 1

    def restart(self, spec: Spec) -> int | None:
        """A person's restart with `spec`: the attempt that will run, or None when the shim is stopping."""
        record = self.ledger.record
        if self.stop_requested or machine.action(record.state, Happening.RESTART_REQUESTED) is None:
            return None
        if self.restart_to is not None:
            log("another restart was asked: it joins the one under way")
        self.restart_to = spec
        return record.attempt + 1

    def apply(self, spec: Spec, changed: list[str]) -> None:
        self.take(spec)
        log(f"settings updated in place: {', '.join(changed) or 'none changed'}")
        details = {"fields": changed, "config_hash": spec.config_hash}
        self.ledger.write(event="updated", details=details, config_hash=spec.config_hash)

    def take(self, spec: Spec) -> None:
        """Run by `spec` from now on (a server that runs keeps what it was started with until it is restarted)."""
        self.spec = self.session.spec = spec
        self.redact = self.session.redact = Redactor(spec.secrets)
        self.session.mux.wait_limit = spec.startup_timeout
        self.watch.retune(spec)
        retune_log(spec.log_max_bytes, spec.log_backups)
