"""Where messages end in the byte stream `mcpctl connect` relays, and what each is: its id (to know which of
the client's requests are in flight) and, for a small one, the message (a big one is read at its ends)."""

from __future__ import annotations

import json

from mcpctl import protocol
from mcpctl.hints import Any
from mcpctl.lean import Record, dataclass

PARSE_LIMIT = 64 * 1024  # a line up to this long is parsed for its id; a longer one is read at its ends
KEEP_ENDS = 1024  # how much of each end of a long line is kept, to find its id


@dataclass(frozen=True)
class Seen(Record):
    """One message as the bridge sees it: its id (as JSON text, so 1 and "1" differ) and what it is."""

    key: str | None
    request: bool
    method: str | None = None
    message: dict[str, Any] | None = None  # small messages only


class Scanner:
    """Where messages end in a byte stream, and what each is; at most PARSE_LIMIT bytes of one are kept."""

    def __init__(self) -> None:
        self.line = bytearray()
        self.size = 0
        self.ends: tuple[bytes, bytearray] | None = None  # head and tail of a line past PARSE_LIMIT

    def feed(self, data: bytes) -> list[Seen]:
        found, start = [], 0
        while (newline := data.find(b"\n", start)) >= 0:
            self._add(data[start:newline])
            found.append(self._end())
            start = newline + 1
        self._add(data[start:])
        return found

    @property
    def partial(self) -> bool:
        return self.size > 0

    def _add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.ends is None and self.size <= PARSE_LIMIT:
            self.line += piece
            return
        if self.ends is None:
            self.ends = (bytes((self.line + piece[:KEEP_ENDS])[:KEEP_ENDS]), bytearray())
            self.line = bytearray()
        tail = self.ends[1]
        tail += piece[-KEEP_ENDS:]
        del tail[:-KEEP_ENDS]

    def _end(self) -> Seen:
        seen = _parsed(bytes(self.line)) if self.ends is None else _by_ends(*self.ends)
        self.line, self.size, self.ends = bytearray(), 0, None
        return seen


def _parsed(line: bytes) -> Seen:
    try:
        message = protocol.decode(line)
    except protocol.ProtocolError:
        return Seen(None, False)
    method = message.get("method")
    key = _key(message.get("id")) if "id" in message else None
    return Seen(key, isinstance(method, str), method if isinstance(method, str) else None, message)


def _by_ends(head: bytes, tail: bytearray) -> Seen:
    request_id, request = protocol.sender_of(head, bytes(tail))
    return Seen(_key(request_id), request)


def _key(request_id: object) -> str | None:
    return json.dumps(request_id) if isinstance(request_id, str | int) and not isinstance(request_id, bool) else None
