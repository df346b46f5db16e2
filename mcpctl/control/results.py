"""What a start or a stop came to, as data for the renderers and `--json`."""

from __future__ import annotations

from mcpctl.control.observe import Observation
from mcpctl.errors import Failure
from mcpctl.lean import Record, dataclass
from mcpctl.states import START_FAILURES, StartOutcome, StopOutcome


@dataclass(frozen=True)
class StartResult(Record):
    """What a start (or restart) did for one server."""

    name: str
    outcome: StartOutcome
    observation: Observation
    elapsed_s: float
    stderr_tail: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome not in START_FAILURES

    @property
    def error(self) -> Failure | None:
        return None if self.ok else self.observation.record.last_error


@dataclass(frozen=True)
class StopResult(Record):
    """What a stop did for one server."""

    name: str
    outcome: StopOutcome
    elapsed_s: float
    leftovers_ended: int = 0
    write_error: str | None = None  # its record could not be written (a full disk): stopped all the same
