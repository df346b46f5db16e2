"""Who listens on an HTTP server's port: a url server is ours only when a process of our tree owns the socket."""

from __future__ import annotations

from urllib.parse import urlsplit

from mcpctl.errors import ErrorType, Failure
from mcpctl.logfile import escape

_LOCAL = ("localhost", "0.0.0.0", "::", "::1", "")


def taken(name: str, url: str, command: str | None, ours: set[int]) -> Failure | None:
    """PORT_IN_USE when `url`'s local port is listened on by a process outside `ours` (our tree's pids:
    empty before our server is spawned) and none of ours; None for a remote url or one we do not start."""
    port = local_port(url) if command else None
    if port is None or (ours and owned(port, ours)):
        return None
    holders = strangers(port, ours)
    return Failure.of(ErrorType.PORT_IN_USE, name=name, port=port, holder=", ".join(holders)) if holders else None


def local_port(url: str) -> int | None:
    """The TCP port of `url` when its host is this machine (the only case where we can see who listens)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host not in _LOCAL and not host.startswith("127."):
        return None
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


def listeners(port: int) -> list[tuple[int | None, str]]:
    """(pid, process name) of every socket listening on TCP `port`; pid None when it is another user's."""
    import psutil

    found = []
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return []
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            found.append((conn.pid, _name(conn.pid)))
    return found


def strangers(port: int, ours: set[int]) -> list[str]:
    """The listeners on `port` that are not in `ours` (pids of our tree), described for a hint."""
    return [f"pid {pid} ({name})" if pid else "a process of another user" for pid, name in listeners(port)
            if pid not in ours]  # fmt: skip


def owned(port: int, ours: set[int]) -> bool:
    """Whether a process of `ours` listens on `port`."""
    return any(pid in ours for pid, _ in listeners(port))


def tree() -> set[int]:
    """The shim's descendants: the server and everything it spawned."""
    import psutil

    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()


def _name(pid: int | None) -> str:
    import psutil

    if pid is None:
        return "?"
    try:
        # Any process may name itself anything: escaped as a server's log text is, since the hint shows it.
        return escape(str(psutil.Process(pid).name()))
    except psutil.Error:
        return "?"
