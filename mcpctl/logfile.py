r"""The server's log, logs/NAME.log: written by its shim, rotated by size, read and followed by `mcpctl logs`.

Every line starts with a UTC time stamp; the shim's own lines carry `[mcpctl]` after it:

    2026-11-25T09:04:35.120Z [mcpctl] spawning npx (cwd /home/me, readiness mcp)
    2026-11-25T09:04:35.871Z Secure MCP Filesystem Server running on stdio

A server's text is escaped before it is written (control characters as \xNN, a leading `[mcpctl]` as
`\x5bmcpctl]`), so its lines never carry terminal escapes and never look like the shim's own; `mcpctl logs`
escapes again when it shows them (files written by older versions).

Only the shim writes the file (the server's stderr reaches it through a pipe), so it can rotate between
whole lines: NAME.log -> NAME.log.1 -> ... -> NAME.log.<backups>, nothing lost and nothing written twice.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from mcpctl.errors import StateDirError
from mcpctl.hints import BinaryIO
from mcpctl.lean import Record, dataclass
from mcpctl.privdir import open_own

MARK = "[mcpctl]"
# C0 controls but tab, DEL and C1 controls: what a terminal would act on (ESC, CR, BEL, backspace, CSI); and
# the bidirectional marks, overrides and isolates, which make a terminal show text in another order than it
# is (a line that reads as something it is not).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_STAMP_LEN = len("2026-11-25T09:04:35.120Z")


def stamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class LogWriter:
    """Appends lines to the log on `fd` (the shim's stderr) and rotates it when it would pass `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, backups: int, fd: int = 2) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.fd = fd
        try:
            self.size = os.fstat(fd).st_size
        except OSError:
            self.size = 0

    def write(self, lines: list[str], ours: bool = False) -> None:
        now = stamp()
        prefix = f"{now} {MARK} " if ours else f"{now} "
        batch = bytearray()
        for line in lines:
            data = (prefix + escape(line, ours) + "\n").encode("utf-8", "replace")
            if self.size + len(batch) + len(data) > self.max_bytes and self.size + len(batch) > 0:
                self._flush(batch)
                batch.clear()
                self.rotate()
            batch += data
        self._flush(batch)

    def _flush(self, data: bytearray) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except OSError:
                return  # a full or broken disk must not stop supervision; the lines are lost
            self.size += written
            view = view[written:]

    def rotate(self) -> None:
        """NAME.log becomes NAME.log.1 (older ones move up, the oldest is dropped); a new NAME.log begins."""
        try:
            if self.backups == 0:
                os.ftruncate(self.fd, 0)
            else:
                for n in range(self.backups - 1, 0, -1):
                    older = generation(self.path, n)
                    if older.exists():
                        os.replace(older, generation(self.path, n + 1))
                os.replace(self.path, generation(self.path, 1))
                fresh = open_own(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                os.dup2(fresh, self.fd)
                os.close(fresh)
        except (OSError, StateDirError):
            return
        self.size = 0


def escape(text: str, ours: bool = False) -> str:
    """`text` safe for a terminal and, unless it is the shim's own, never taken for a line of the shim's."""
    text = _CONTROL.sub(_escaped, text)
    return text if ours or not text.startswith(MARK) else "\\x5b" + text[1:]


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def generation(path: Path, n: int) -> Path:
    return path if n == 0 else path.with_name(f"{path.name}.{n}")


@dataclass(frozen=True)
class Line(Record):
    """One line of a server's log, with its time when it has one."""

    time: float | None
    ours: bool  # written by the shim, not the server
    text: str

    def to_json(self, server: str) -> dict[str, object]:
        return {
            "server": server,
            "time": stamp(self.time) if self.time is not None else None,
            "source": "mcpctl" if self.ours else "server",
            "line": self.text,
        }

    def render(self) -> str:
        when = stamp(self.time) if self.time is not None else ""
        text = escape(self.text, self.ours)
        return f"{when} {MARK} {text}" if self.ours else f"{when} {text}".lstrip()


def parse(raw: str) -> Line:
    head, _, rest = raw.partition(" ")
    when = _parse_stamp(head) if len(head) == _STAMP_LEN else None
    if when is None:
        return Line(None, False, raw)  # a line from an older mcpctl, or a partial one
    if rest.startswith(MARK + " "):
        return Line(when, True, rest[len(MARK) + 1 :])
    return Line(when, False, rest)


def _parse_stamp(text: str) -> float | None:
    import calendar

    try:
        parsed = time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
        return calendar.timegm(parsed) + int(text[20:23]) / 1000
    except ValueError:
        return None


def tail(path: Path, count: int, since: float | None = None) -> list[Line]:
    """The last `count` lines (all lines after `since`, when given), across rotated generations."""
    found: list[Line] = []
    for n in range(1000):
        candidate = generation(path, n)
        if not candidate.exists():
            if n > 0:
                break
            continue
        if since is not None and candidate.stat().st_mtime < since:
            break  # every line in it is older
        lines = [parse(raw) for raw in _last_lines(candidate, None if since is not None else count - len(found))]
        found = lines + found
        if since is None and len(found) >= count:
            break
    if since is not None:
        found = [line for line in found if line.time is None or line.time >= since]
    return found[max(len(found) - count, 0) :] if count >= 0 else found


def server_lines(path: Path, start: int, count: int) -> list[str]:
    """The server's own last `count` lines written at or after byte `start` of the current file."""
    try:
        with _open(path) as handle:
            size = handle.seek(0, os.SEEK_END)
            begin = start if start <= size else 0  # the file was rotated since: read what the new one has
            begin = max(begin, size - 64 * 1024)
            handle.seek(begin)
            data = handle.read(size - begin)
    except OSError:
        return []
    lines = [parse(raw) for raw in data.decode("utf-8", "replace").splitlines()]
    return [line.text for line in lines if not line.ours][-count:]


def _last_lines(path: Path, count: int | None) -> list[str]:
    """The last `count` lines of a file (all of them for None), reading from the end in blocks."""
    try:
        with _open(path) as handle:
            end = handle.seek(0, os.SEEK_END)
            if count is None:
                handle.seek(0)
                return handle.read().decode("utf-8", "replace").splitlines()
            data, position = b"", end
            while position > 0 and data.count(b"\n") <= count:
                step = min(64 * 1024, position)
                position -= step
                handle.seek(position)
                data = handle.read(step) + data
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:] if count > 0 else []


class Follower:
    """Reads lines appended to a file, following it across rotations and truncation, never losing one.

    It follows a file by its inode. Between every chunk it reads, it looks whether the path names a
    new file and, if so, opens ("pins") every generation newer than the newest it knows, however many
    rotations happened meanwhile: an open file stays readable when the writer renames or deletes it.
    It reads the file it is on to the end, then the pinned ones, oldest first. Only a generation the
    writer deleted (past its backups) before a look found it is lost.
    """

    def __init__(self, path: Path, from_end: bool = True) -> None:
        self.path = path
        self.handle: BinaryIO | None = None
        self.inode: int | None = None
        self.pinned: list[tuple[int, BinaryIO]] = []  # newer generations, oldest first
        self.buffer = b""
        self._open(from_end)

    def _open(self, at_end: bool) -> None:
        try:
            handle = _open(self.path)  # held across calls, closed on rotation
        except OSError:
            self.handle, self.inode = None, None
            return
        if at_end:
            handle.seek(0, os.SEEK_END)
        self.handle, self.inode = handle, os.fstat(handle.fileno()).st_ino

    def lines(self) -> Iterator[str]:
        """What was appended since the last call (complete lines only)."""
        if self.handle is None:
            self._open(at_end=False)
        while self.handle is not None:
            current = self._pin()
            chunk = self.handle.read(_CHUNK)
            if chunk:
                yield from self._split(chunk)
            elif self.pinned:  # this one is complete (it was rotated away): on to the next
                self.handle.close()
                self.buffer = b""
                self.inode, self.handle = self.pinned.pop(0)
            elif current is not None and current.st_ino == self.inode and current.st_size < self.handle.tell():
                self.handle.seek(0)  # truncated: start again at its top
                self.buffer = b""
            else:
                return

    def _pin(self) -> os.stat_result | None:
        """Open the generations newer than the newest we know, if the path names a file we do not."""
        try:
            current = os.stat(self.path)
        except OSError:
            return None  # between a rotation's rename and the new file: the next look finds it
        known = [self.inode, *(inode for inode, _ in self.pinned)]
        if current.st_ino in known:
            return current
        generations = _open_generations(self.path)  # newest first
        inodes = [inode for inode, _ in generations]
        newest = next((inode for inode in reversed(known) if inode in inodes), None)
        cut = inodes.index(newest) if newest is not None else len(generations)
        for _, handle in generations[cut:]:
            handle.close()  # what we know already, and older
        self.pinned.extend(reversed(generations[:cut]))
        return current

    def _split(self, data: bytes) -> Iterator[str]:
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace")

    def close(self) -> None:
        for handle in [self.handle, *(handle for _, handle in self.pinned)]:
            if handle is not None:
                with contextlib.suppress(OSError):
                    handle.close()


_CHUNK = 256 * 1024  # bytes read between two looks for a rotation
_MAX_GENERATIONS = 1000


def _open_generations(path: Path) -> list[tuple[int, BinaryIO]]:
    """Each generation of `path` that exists, opened, with its inode: newest first, each file once.

    Opened from the newest up while the writer may be rotating: a file moves only to a higher number,
    so one that moved during the scan is met again (and skipped as seen) but never missed. A rotation
    in progress leaves one number free (it renames n to n+1 from the oldest down): the scan ends at the
    second missing number in a row, not at that one.
    """
    found: list[tuple[int, BinaryIO]] = []
    missing = 0
    for n in range(_MAX_GENERATIONS):
        try:
            handle = _open(generation(path, n))  # returned open to the caller
        except OSError:
            missing += 1
            if missing == 2:
                break
            continue
        missing = 0
        inode = os.fstat(handle.fileno()).st_ino
        if any(inode == seen for seen, _ in found):
            handle.close()
            continue
        found.append((inode, handle))
    return found


def _open(path: Path) -> BinaryIO:
    """A log file for reading: never through a symlink, never someone else's (`privdir.open_own`)."""
    return os.fdopen(open_own(path, os.O_RDONLY), "rb")
