"""systemd's readiness protocol, spoken over its socket: no libsystemd needed.

The service manager names a unix datagram socket in $NOTIFY_SOCKET (a path, or an abstract name written
with a leading `@`); each datagram is newline-separated `KEY=VALUE` assignments. Outside systemd the
variable is unset and every call here does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"


class Notifier:
    """Sends `READY=1`, `STOPPING=1`, `STATUS=…` and `WATCHDOG=1` to the service manager, if there is one."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        raw = environ.get(ENV_SOCKET, "")
        self.address: str | bytes | None = None
        if raw.startswith("@"):
            self.address = b"\0" + raw[1:].encode()  # an abstract socket: no file, a leading NUL
        elif raw.startswith("/"):
            self.address = raw
        self.watchdog_interval = _watchdog_interval(environ)

    def send(self, **fields: str) -> bool:
        """One datagram of `KEY=VALUE` lines; False if there is no manager or it could not be reached."""
        if self.address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, self.address)
            return True
        return False


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """Half of $WATCHDOG_USEC in seconds (systemd's advice), when the watchdog is meant for this process."""
    try:
        usec = int(environ.get(ENV_WATCHDOG_USEC, ""))
    except ValueError:
        return None
    owner = environ.get(ENV_WATCHDOG_PID)
    if usec <= 0 or (owner and owner != str(os.getpid())):
        return None
    return usec / 2_000_000
