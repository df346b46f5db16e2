"""How `connect`'s bridge reads the streams it copies: where each message ends, its id, what it is."""

from __future__ import annotations

import json

from mcpctl.control.scan import PARSE_LIMIT, Scanner


def test_small_messages_are_parsed_across_reads() -> None:
    scanner = Scanner()
    assert scanner.feed(b'{"jsonrpc":"2.0","id":1,"me') == []
    assert scanner.partial
    request, notification, answer = scanner.feed(
        b'thod":"initialize","params":{}}\n{"jsonrpc":"2.0","method":"x"}\n{"jsonrpc":"2.0","id":"1","result":{}}\n'
    )
    assert (request.key, request.request, request.method) == ("1", True, "initialize")
    assert request.message is not None
    assert (notification.key, notification.request) == (None, True)
    assert (answer.key, answer.request) == ('"1"', False)  # 1 and "1" are different ids
    assert not scanner.partial


def test_a_long_message_is_known_by_its_ends_and_not_kept() -> None:
    scanner = Scanner()
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"x": "y" * (3 * PARSE_LIMIT)}})
    found = []
    for start in range(0, len(body), 10_000):
        found += scanner.feed(body[start : start + 10_000].encode())
        assert len(scanner.line) <= PARSE_LIMIT
    (seen,) = found + scanner.feed(b"\n")
    assert (seen.key, seen.request, seen.message) == ("7", True, None)


def test_garbage_is_no_request() -> None:
    (seen,) = Scanner().feed(b"not json\n")
    assert (seen.key, seen.request) == (None, False)
