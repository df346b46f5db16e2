"""Readiness and health by protocol era: which era a stdio server speaks, found out once per run.

The shim probes with `server/discover` first (the stdio binding's rule for a client of both eras): a
modern answer makes the run ready in the modern era; "method not found", any other error, an answer
naming no modern version, or silence for `PROBE_TIMEOUT` seconds sends the legacy `initialize`. A
late modern answer still wins (a slow server read the probe first, so its connection is modern). A
server that exits before answering the probe is spawned once more, pinned to legacy; when that one
fails to start too, the probe was not the cause, and later runs under the same config that exit are
judged at once (a crash loop spawns each run once, not twice). The era is
remembered in the record's `server_info` with the config hash it was found under; the next run of the
same config goes straight to `initialize` when it was legacy.
"""

from __future__ import annotations

from collections.abc import Callable

from mcpctl import protocol
from mcpctl.hints import TYPE_CHECKING, Any
from mcpctl.shim import translate
from mcpctl.shim.translate import LEGACY, MODERN

if TYPE_CHECKING:
    from mcpctl.contract import Spec
    from mcpctl.shim.run import Run
    from mcpctl.state import StateRecord

Message = dict[str, Any]
PROBE_ID = "mcpctl-discover"
PROBE_TIMEOUT = 2.0  # seconds a silent server gets to answer the probe before the legacy handshake


class Handshake:
    """The start of one run's session: the probe, then perhaps `initialize` (`hello`)."""

    def __init__(self, hello: Message, probe: bool, now: float) -> None:
        self.hello = hello
        self.probing = probe  # the probe was sent and not answered yet
        self.fallback_at = now + PROBE_TIMEOUT if probe else float("inf")
        self.initializing = not probe

    def opening(self) -> Message:
        return translate.discover_request(PROBE_ID) if self.probing else self.hello

    def tick(self, now: float) -> Message | None:
        """The initialize to send once a silent probe's time is over."""
        if self.probing and not self.initializing and now >= self.fallback_at:
            self.initializing = True
            return self.hello
        return None

    def next_wakeup(self) -> float:
        return self.fallback_at if self.probing and not self.initializing else float("inf")

    def answer(self, message: Message) -> tuple[str, Message] | Message | None:
        """A handshake answer: (era, result) when ready, a message to send (the fallback), or None.
        Raises ProtocolError when initialize was refused."""
        if message.get("id") == PROBE_ID and "method" not in message:
            self.probing = False
            if translate.modern_version(message.get("result")) is not None:
                return MODERN, message["result"]
            if not self.initializing:
                self.initializing = True
                return self.hello
            return None
        if message.get("id") == protocol.INIT_ID and "method" not in message and self.initializing:
            if self.probing and "error" in message:
                return None  # perhaps the probe's late answer locked the connection modern: wait for it
            return LEGACY, protocol.initialize_outcome(message)
        return None


def server_info(era: str, result: Message, config_hash: str | None) -> dict[str, Any]:
    """What the record shows of the server: name, version, its protocol and era (and for which config)."""
    if era == MODERN:
        info, version = translate.server_info(result), translate.modern_version(result) or ""
    else:
        found = result.get("serverInfo")
        info, version = (found if isinstance(found, dict) else {}), str(result.get("protocolVersion", ""))
    return {
        "name": str(info.get("name", "")),
        "version": str(info.get("version", "")),
        "protocol_version": version,
        "protocol_era": era if result else "",
        "era_config_hash": config_hash,
    }


def pin(run: Run, previous: Run | None, record: StateRecord, spec: Spec) -> None:
    """A server pinned by its config (`protocol = "legacy"`), or found legacy under this config, is not
    probed; one that failed to start even when pinned is not respawned pinned again (`previous`: the run
    this one follows)."""
    blameless = getattr(previous, "probe_blameless", None)  # a config hash, or None
    if blameless is not None and blameless == spec.config_hash:
        setattr(run, "probe_blameless", blameless)  # noqa: B010 - as below
    info = record.server_info
    found = info.get("protocol_era") == LEGACY and info.get("era_config_hash") == spec.config_hash
    if found or spec.protocol == LEGACY:
        setattr(run, "pinned", True)  # noqa: B010 - only ServerRun probes; fakes and tenants ignore it


def health_send(send: Callable[[Message], None], era: str) -> Callable[[Message], None]:
    """How the shim's pings reach the server: a modern server has no ping, so it is asked server/discover."""
    if era != MODERN:
        return send

    def liveness(message: Message) -> None:
        send(translate.discover_request(message["id"]) if message.get("method") == "ping" else message)

    return liveness
