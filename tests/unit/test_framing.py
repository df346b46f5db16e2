"""LineReader and Outbox on a real pipe: incremental splitting, the per-call read budget, lines past the
limit, and a big message written out in pieces."""

from __future__ import annotations

import contextlib
import os
import selectors
from collections.abc import Iterator

import pytest

from mcpctl import protocol
from mcpctl.shim.channels import KEEP_ENDS, LineReader, Outbox, Oversize

Lines = list[bytes | Oversize]


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def pump(reader: LineReader, write_fd: int, data: bytes, peak: list[int] | None = None) -> Lines:
    """Write `data` through the pipe as fast as it takes it, reading between writes; what was read."""
    lines: Lines = []
    view = memoryview(data)
    while view:
        with contextlib.suppress(BlockingIOError):
            view = view[os.write(write_fd, view) :]
        lines += reader.read()
        if peak is not None:
            peak.append(len(reader.buffer))
    return lines + reader.read()


def test_many_small_lines_in_one_read_come_back_in_order(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reader = LineReader(read_fd)
    os.write(write_fd, b"".join(b'{"n":%d}\n' % n for n in range(500)) + b"\n  \n")
    assert reader.read() == [b'{"n":%d}' % n for n in range(500)]  # blank lines are skipped
    assert reader.buffer == b""
    assert not reader.closed


def test_a_line_split_across_many_reads_is_joined(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reader = LineReader(read_fd)
    line = b'{"jsonrpc":"2.0","id":1,"result":{}}'
    for byte in line:
        os.write(write_fd, bytes([byte]))
        assert reader.read() == []
    os.write(write_fd, b"\n{")
    assert reader.read() == [line]
    assert reader.buffer == b"{"


def test_a_20_mb_line_arrives_whole(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reader = LineReader(read_fd, limit=256 * 1024 * 1024)
    line = b'{"text":"' + b"x" * 20_000_000 + b'"}'
    assert pump(reader, write_fd, line + b"\n" + b'{"next":1}\n') == [line, b'{"next":1}']


def test_one_read_takes_at_most_its_budget_and_the_rest_comes_next_call(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reader = LineReader(read_fd, budget=1000)
    lines = [b"%099d" % n for n in range(30)]  # 100 bytes each with the newline
    os.write(write_fd, b"".join(line + b"\n" for line in lines))
    assert reader.read() == lines[:10]
    assert reader.read() == lines[10:20]
    assert reader.read() == lines[20:]
    assert reader.read() == []
    assert not reader.closed


def test_a_line_past_the_limit_is_discarded_as_it_arrives_and_reported(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reader = LineReader(read_fd, limit=10_000)
    big = b'{"jsonrpc":"2.0","id":7,"params":"' + b"y" * 3_000_000 + b'","method":"m"}'
    peak: list[int] = []
    lines = pump(reader, write_fd, big + b'\n{"after":1}\n', peak)
    assert max(peak) <= 10_000  # never buffered past the limit
    oversize, after = lines
    assert after == b'{"after":1}'
    assert isinstance(oversize, Oversize)
    assert (oversize.size, oversize.head, oversize.tail) == (len(big), big[:KEEP_ENDS], big[-KEEP_ENDS:])


def test_eof_hands_back_the_unfinished_line_and_an_unfinished_oversize(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    reader = LineReader(read_fd, limit=10)
    os.write(write_fd, b"short\n" + b"z" * 50)
    os.close(write_fd)
    short, cut = reader.read()
    assert short == b"short"
    assert isinstance(cut, Oversize)
    assert cut.size == 50
    assert reader.closed


@pytest.mark.parametrize(
    ("head", "tail", "expected"),
    [
        (b'{"jsonrpc":"2.0","id":12,"result":{"x', b"", (12, False)),
        (b'{"jsonrpc": "2.0", "id": "a-1", "method":"tools/call","params":{', b"", ("a-1", True)),
        (b'{"result":{"content":[', b'xx"}]},"jsonrpc":"2.0","id":5}', (5, False)),
        (b'{"method":"tools/call","params":{"a":"', b'"}},"jsonrpc":"2.0","id":3}\r', (3, True)),
        (b'{"jsonrpc":"2.0","method":"notifications/x","params":{', b'"}}', (None, True)),
        (b"[[[[", b"]]]]", (None, False)),
    ],
)
def test_the_sender_of_a_message_too_large_to_parse_is_found_from_its_ends(
    head: bytes, tail: bytes, expected: tuple[object, bool]
) -> None:
    assert protocol.sender_of(head, tail) == expected


def test_the_error_for_a_message_too_large_names_the_size_and_the_limit() -> None:
    error = protocol.too_large(4, 300, 200, "demo")
    assert error["id"] == 4
    assert error["error"]["code"] == protocol.INVALID_REQUEST
    assert "300 bytes" in error["error"]["message"]
    assert "200 bytes" in error["error"]["message"]
    assert "max_message_bytes of demo" in error["error"]["message"]
    assert error["error"]["data"]["size"] == 300
    assert error["error"]["data"]["limit"] == 200
    assert "raise max_message_bytes of demo" in error["error"]["data"]["hint"]


def test_the_outbox_writes_a_big_message_in_pieces_as_the_fd_takes_them(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    interest: list[bool] = []
    errors: list[bool] = []
    outbox = Outbox(write_fd, selectors.DefaultSelector(), interest.append, lambda: errors.append(True), 1 << 30)
    message = bytes(range(256)) * 20_000  # 5 MB, far more than a pipe holds
    outbox.put(message)
    received = bytearray(os.read(read_fd, 1 << 20))
    while outbox.data:
        outbox.flush()
        received += os.read(read_fd, 1 << 20)
    assert received == message
    assert interest == [True, False]  # watched for writability only while something was queued
    assert not errors


def test_the_outbox_gives_up_on_a_broken_fd(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    errors: list[bool] = []
    outbox = Outbox(write_fd, selectors.DefaultSelector(), lambda _want: None, lambda: errors.append(True), 1 << 30)
    outbox.put(b"x" * 200_000)
    os.close(read_fd)
    outbox.flush()
    assert errors == [True]
    assert outbox.failed
    assert not outbox.data


def test_a_message_as_long_as_the_limit_is_queued_whole_for_a_peer_that_has_not_read_yet(
    pipe: tuple[int, int],
) -> None:
    """The limit is the peer's max_message_bytes: one message of that size passes however little the fd
    takes at once (the old outbox gave up at a fixed 64 MiB, below the 256 MiB promised)."""
    read_fd, write_fd = pipe
    errors: list[bool] = []
    outbox = Outbox(write_fd, selectors.DefaultSelector(), lambda _want: None, lambda: errors.append(True), 1_000_000)
    message = b"m" * 999_999 + b"\n"
    outbox.put(message)
    assert not errors
    assert outbox.mid_line  # the pipe took its start only
    received = bytearray()
    while outbox.data:
        received += os.read(read_fd, 1 << 20)
        outbox.flush()
    received += os.read(read_fd, 1 << 20)
    assert received == message
    assert not outbox.mid_line
    assert outbox.taken == outbox.written == len(message)


def test_a_peer_with_more_than_the_limit_unread_when_the_next_message_comes_is_given_up_on(
    pipe: tuple[int, int],
) -> None:
    _read_fd, write_fd = pipe
    errors: list[bool] = []
    outbox = Outbox(write_fd, selectors.DefaultSelector(), lambda _want: None, lambda: errors.append(True), 1_000_000)
    outbox.put(b"a" * 900_000 + b"\n")
    outbox.put(b"b" * 900_000 + b"\n")  # what waited before it was under the limit: queued
    assert not errors
    outbox.put(b"c\n")  # more than the limit unread: the peer stopped reading
    assert errors == [True]
    assert outbox.failed
    assert outbox.overrun
