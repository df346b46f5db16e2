"""The shim's upstream for HTTP servers: each message is POSTed from a thread of its own, and what
comes back is handed to the shim's loop through a pipe, so a slow answer never stalls the loop."""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import threading
from collections.abc import Callable, Mapping

from mcpctl import protocol
from mcpctl.errors import ErrorType, Failure
from mcpctl.hints import Any
from mcpctl.shim.http_mcp import Exchange

# An SSE stream may be quiet for long stretches while a tool works; the client's own timeout rules.
READ_TIMEOUT = 600.0


class HttpRelay:
    def __init__(
        self,
        name: str,
        url: str,
        session: str | None,
        selector: selectors.BaseSelector,
        deliver: Callable[[dict[str, Any]], None],
        redact: Callable[[str], str],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.headers = dict(headers or {})  # the config's headers (an Authorization token), on every POST
        self.redact = redact  # the URL may carry a secret through ${VAR}: errors must not show it
        self.url = url
        self.session = session
        self.selector = selector
        self.deliver = deliver
        self.inbox: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_read, False)
        os.set_blocking(self.wake_write, False)
        self.closed = False
        selector.register(self.wake_read, selectors.EVENT_READ, self._on_wake)

    def send(self, message: dict[str, Any]) -> None:
        threading.Thread(target=self._post, args=(message,), daemon=True).start()

    def _post(self, message: dict[str, Any]) -> None:
        try:
            for reply in Exchange(self.url, self.session, READ_TIMEOUT, self.headers).send(message):
                self._push(reply)
        except (OSError, protocol.ProtocolError) as exc:
            if "id" in message and "method" in message:
                detail = self.redact(f"{message['method']} to {self.url} failed: {exc}")
                failure = Failure.of(ErrorType.CONNECTION_LOST, name=self.name, detail=detail)
                data = {"type": failure.type.value, "hint": failure.hint, "retryable": failure.retryable}
                self._push(protocol.error_response(message["id"], protocol.MCPCTL_ERROR, failure.message, data))

    def _push(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        self.inbox.put(message)
        with contextlib.suppress(OSError):
            os.write(self.wake_write, b"!")

    def _on_wake(self, _mask: int) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.wake_read, 4096):
                pass
        while not self.closed:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return
            self.deliver(message)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.wake_read)
        for fd in (self.wake_read, self.wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
