"""mcpctl's message catalogs: refresh them from the sources, or check that they are complete.

    python .ci/catalog.py            # add new msgids to every mcpctl/locale/*/LC_MESSAGES/mcpctl.po (empty
                                     # msgstr), drop those no source uses, write mcpctl/locale/mcpctl.pot
    python .ci/catalog.py --check    # exit 1, listing every msgid with no translation, every placeholder
                                     # mismatch, every stale entry and every msgid written in more than
                                     # one entry, per language
    python .ci/catalog.py --new LANG # start a catalog for another language

The msgids are found where the code says them: `_("…")` and `N_("…")` calls anywhere in mcpctl/, the
header words of `table([...])` calls, the error templates and hints of mcpctl/errors.py, and every
help text of the command tree (command docstrings and option help, read from typer as `--help` shows them).
Entries are sorted by msgid and carry no line numbers, so two branches that add messages merge cleanly.
"""

from __future__ import annotations

import argparse
import ast
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# isort: off
import typer  # noqa: E402 - after the path is set

from mcpctl import i18n, pofile  # noqa: E402
from mcpctl.cli import app  # noqa: E402
from mcpctl.cli.help import texts  # noqa: E402
from mcpctl.errors import KINDS  # noqa: E402
# isort: on

PACKAGE = ROOT / "mcpctl"
_CALLS = {"_", "N_"}


def sources() -> dict[str, set[str]]:
    """Every msgid and the files (relative to the repo) that use it."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for text in _literals(ast.parse(path.read_text(encoding="utf-8"), where)):
            found.setdefault(text, set()).add(where)
    for text in _errors() + _help():
        found.setdefault(text[0], set()).add(text[1])
    found.pop("", None)
    return found


def _literals(tree: ast.AST) -> list[str]:
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        first = node.args[0]
        if name in _CALLS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            out.append(first.value)
        elif name == "table" and isinstance(first, ast.List):
            out += [e.value for e in first.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return out


def _errors() -> list[tuple[str, str]]:
    return [(text, "mcpctl/errors.py") for kind in KINDS.values() for text in (kind.template, kind.hint)]


def _help() -> list[tuple[str, str]]:
    return [(text, "mcpctl/cli (--help)") for text in texts(typer.main.get_command(app))]


def placeholders(text: str) -> list[str]:
    """The `{field!conv:spec}` placeholders of `text`, sorted (translations may reorder them)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        return ["<unbalanced braces>"]
    found = [f"{{{n}{'!' + c if c else ''}{':' + s if s else ''}}}" for _, n, s, c in parsed if n is not None]
    return sorted(found)


def catalogs(locale_dir: Path) -> list[Path]:
    return sorted(locale_dir.glob(f"*/LC_MESSAGES/{i18n.DOMAIN}.po"))


def problems(po: Path, wanted: dict[str, set[str]]) -> list[str]:
    """What is wrong with one catalog, a line each."""
    _, entries = pofile.read(po)
    have = {e.msgid: e for e in entries}
    lang = po.parent.parent.name
    out = [f"{lang}: untranslated: {msgid!r}" for msgid in sorted(wanted) if not _done(have.get(msgid))]
    for msgid in sorted(set(have) & set(wanted)):
        entry = have[msgid]
        if _done(entry) and placeholders(entry.msgid) != placeholders(entry.msgstr):
            out.append(
                f"{lang}: placeholders differ: {msgid!r} has {placeholders(msgid)}, "
                f"the translation {placeholders(entry.msgstr)}"
            )
    out += [f"{lang}: stale (no source uses it): {msgid!r}" for msgid in sorted(set(have) - set(wanted))]
    return out + _duplicates(lang, entries)


def _duplicates(lang: str, entries: list[pofile.Entry]) -> list[str]:
    """A msgid written in more than one entry (a merge of two branches that each added it): `have` keeps
    only the last, the .mo too, so the other translation is silently dropped and GNU msgfmt rejects the file."""
    count: dict[str, int] = {}
    for entry in entries:
        count[entry.msgid] = count.get(entry.msgid, 0) + 1
    return [f"{lang}: duplicate ({n} entries): {msgid!r}" for msgid, n in sorted(count.items()) if n > 1]


def _done(entry: pofile.Entry | None) -> bool:
    return entry is not None and bool(entry.msgstr) and not entry.fuzzy


def refresh(po: Path, wanted: dict[str, set[str]]) -> None:
    header, entries = pofile.read(po) if po.exists() else (_header(po.parent.parent.name), [])
    have = {e.msgid: e for e in entries}
    fresh = [
        pofile.Entry(
            msgid,
            have[msgid].msgstr if msgid in have else "",
            have[msgid].fuzzy if msgid in have else False,
            tuple(sorted(refs)),
            have[msgid].comments if msgid in have else (),
        )
        for msgid, refs in wanted.items()
    ]
    pofile.write(po, header, fresh)


def _header(lang: str) -> str:
    return f"Project-Id-Version: mcpctl\nLanguage: {lang}\n{pofile.HEADER}Plural-Forms: nplurals=1; plural=0;\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refresh or check mcpctl's message catalogs.")
    parser.add_argument("--check", action="store_true", help="list what is missing; exit 1 if anything is")
    parser.add_argument("--new", metavar="LANG", help="start mcpctl/locale/LANG/LC_MESSAGES/mcpctl.po")
    parser.add_argument("--locale-dir", type=Path, default=i18n.LOCALE_DIR, help="(for tests) another locale dir")
    args = parser.parse_args(argv)
    wanted = sources()
    if args.check:
        found = [line for po in catalogs(args.locale_dir) for line in problems(po, wanted)]
        for line in found:
            print(line)
        print(f"catalog: {len(wanted)} msgids, {len(found)} problem(s)", file=sys.stderr)
        return 1 if found else 0
    if args.new:
        folder = args.locale_dir / args.new / "LC_MESSAGES"
        folder.mkdir(parents=True, exist_ok=True)
        refresh(folder / f"{i18n.DOMAIN}.po", wanted)
    for po in catalogs(args.locale_dir):
        refresh(po, wanted)
    pot = [pofile.Entry(msgid, "", False, tuple(sorted(refs))) for msgid, refs in wanted.items()]
    pofile.write(args.locale_dir / f"{i18n.DOMAIN}.pot", _header(""), pot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
