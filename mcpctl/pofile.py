"""Gettext catalogs without GNU gettext: read and write `.po` files, write `.mo` files (msgfmt's format).

Used at build time (setup.py compiles every `.po` into the wheel), by `.ci/catalog.py` (refresh and
check), and at run time only when a `.mo` is missing or older than its `.po` (a development checkout).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

HEADER = "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n"
_MAGIC = 0x950412DE


@dataclass(frozen=True)
class Entry:
    """One message: its English text, its translation ("" = not yet), and where it comes from."""

    msgid: str
    msgstr: str = ""
    fuzzy: bool = False
    references: tuple[str, ...] = ()
    comments: tuple[str, ...] = field(default=())


def read(path: Path) -> tuple[str, list[Entry]]:
    """The header's msgstr and every entry of a `.po` file, in file order."""
    header, entries = "", []
    for block in _blocks(path.read_text(encoding="utf-8")):
        entry = _entry(block)
        if entry is None:
            continue
        if entry.msgid == "":
            header = entry.msgstr
        else:
            entries.append(entry)
    return header, entries


def _blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if not line.strip():
            blocks.append([])
        else:
            blocks[-1].append(line)
    return [b for b in blocks if b]


def _entry(lines: list[str]) -> Entry | None:
    parts: dict[str, str] = {}
    current, flags, refs, comments = "", "", [], []
    for line in lines:
        if line.startswith("#,"):
            flags += line[2:]
        elif line.startswith("#:"):
            refs += line[2:].split()
        elif line.startswith("#~"):
            return None  # an obsolete entry: kept by some editors, never a message
        elif line.startswith("#"):
            comments.append(line[1:].strip())
        elif line.startswith('"'):
            parts[current] += _unquote(line)
        else:
            current, _, rest = line.partition(" ")
            parts[current] = _unquote(rest.strip())
    if "msgid" not in parts:
        return None
    fuzzy = "fuzzy" in flags.replace(" ", "").split(",")
    return Entry(parts["msgid"], parts.get("msgstr", ""), fuzzy, tuple(refs), tuple(comments))


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_ESCAPED = re.compile(r"\\(.)")


def _unquote(text: str) -> str:
    """A .po string's content: `"a\\"b\\n"` → `a"b` and a newline."""
    if "\\" not in text:
        return text[1:-1]
    return _ESCAPED.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])


def write(path: Path, header: str, entries: list[Entry]) -> None:
    """Write a `.po`: the header, then entries sorted by msgid (so parallel additions merge cleanly)."""
    chunks = [f"msgid {_quote('')}\nmsgstr {_quote(header)}\n"]
    for entry in sorted(entries, key=lambda e: e.msgid):
        lines = [f"# {c}" for c in entry.comments]
        lines += [f"#: {ref}" for ref in entry.references]
        lines += ["#, fuzzy"] if entry.fuzzy else []
        lines += [f"msgid {_quote(entry.msgid)}", f"msgstr {_quote(entry.msgstr)}"]
        chunks.append("\n".join(lines) + "\n")
    path.write_text("\n".join(chunks), encoding="utf-8")


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    pieces = escaped.split("\n")
    if len(pieces) == 1:
        return f'"{escaped}"'
    lines = [f'"{p}\\n"' for p in pieces[:-1]] + ([f'"{pieces[-1]}"'] if pieces[-1] else [])
    return '""\n' + "\n".join(lines)


def mo_bytes(header: str, entries: list[Entry]) -> bytes:
    """The `.mo` of a catalog: translated, non-fuzzy entries only (the rest fall back to English)."""
    catalog = {"": header or HEADER}
    catalog.update({e.msgid: e.msgstr for e in entries if e.msgstr and not e.fuzzy})
    keys = sorted(catalog)
    ids, strs, index = b"", b"", []
    for key in keys:
        kid, kstr = key.encode(), catalog[key].encode()
        index.append((len(ids), len(kid), len(strs), len(kstr)))
        ids += kid + b"\0"
        strs += kstr + b"\0"
    start = 7 * 4 + 16 * len(keys)  # the header, then two tables of (length, offset) pairs
    key_table = [n for o, length, _, _ in index for n in (length, start + o)]
    value_table = [n for _, _, o, length in index for n in (length, start + len(ids) + o)]
    head = struct.pack("Iiiiiii", _MAGIC, 0, len(keys), 7 * 4, 7 * 4 + len(keys) * 8, 0, 0)
    return head + struct.pack(f"{4 * len(keys)}i", *key_table, *value_table) + ids + strs


def compile_po(po: Path, mo: Path) -> None:
    """Write `mo` from `po` (atomically enough for a build: a temp file, then rename)."""
    header, entries = read(po)
    temp = mo.with_suffix(".mo.tmp")
    temp.write_bytes(mo_bytes(header, entries))
    temp.replace(mo)
