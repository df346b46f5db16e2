"""`--help` in the user's language: the click command tree's texts translated in place, and a help
formatter that wraps by display width (a CJK character is two columns) so help still fits 80 columns.

English needs none of this: `localize` does nothing then, so English help, and the shell completions
generated from the same tree, stay exactly as typer writes them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

import typer.core
from typer._click import core as click_core
from typer._click import formatting

from mcpctl import i18n
from mcpctl.i18n import N_, _

# The words typer and click write around our texts (typer looks them up through gettext, click does not).
FRAME = (
    N_("Usage: "),
    N_("Arguments"),
    N_("Options"),
    N_("Commands"),
    N_("Show this message and exit."),
    N_("default: {default}"),
    N_("required"),
    N_("env var: {var}"),
    N_("(dynamic)"),
    N_("Aborted!"),
    N_("{heading}:"),
)
# click's and typer's usage errors as they word them (click has no catalog), translated whole when shown
# (`usage_error`); typer's two stay English in typer, which appends "Did you mean ...?" to one of them.
POSITIVE = N_("expected a positive number of seconds, got {value:g}")  # our --timeout check's (cli/app.py)
USAGE = (
    N_("{message} (Possible options: {options})"),
    N_("No such option: {name}"),
    N_("Invalid value for {param}: {message}"),
    N_("Invalid value: {message}"),
    N_("{value} is not a valid {kind}."),
    N_("{value} is not in the range {range}."),
    N_("Missing argument {param}."),
    N_("Missing option {param}."),
    N_("Option {name} requires an argument."),
    N_("Option {name} does not take a value."),
    N_("Got unexpected extra argument(s) ({args})"),
    N_("No such command {name!r}. Did you mean {suggestions}?"),
    N_("No such command {name!r}."),
    N_("Missing command."),
    POSITIVE,
)
_KINDS = (N_("float"), N_("integer"))  # click's names of the types `{value} is not a valid {kind}.` names
WIDTH = 78  # click's: 80 columns less a margin of two
_SHORT_GAP = 6  # click puts the command names and two indents before a short help


def texts(command: click_core.Command) -> Iterator[str]:
    """Every help text of `command` and its subcommands, as the catalog's msgids."""
    for cmd in _walk(command):
        if cmd.help:
            yield inspect.cleandoc(cmd.help)
        if cmd.short_help:
            yield inspect.cleandoc(cmd.short_help)
        yield from (str(param.help) for param in cmd.params if getattr(param, "help", None))  # type: ignore[attr-defined]


def localize(command: click_core.Command) -> None:
    """Translate the help of `command`'s tree in place, for a language other than English."""
    if i18n.language() == i18n.ENGLISH:
        return
    vars(typer.core)["_"] = _typer_words
    click_core.Context.formatter_class = CellFormatter
    for cmd in _walk(command):
        _localize_one(cmd)
    for group in _walk(command):
        if isinstance(group, typer.core.TyperGroup):
            _shorten(group)


def _typer_words(message: str) -> str:
    """typer's own words ("Options", "default: …") through our catalog, but for its usage errors."""
    return message if message in USAGE else _(message)


def usage_error(message: str) -> str:
    """A usage error of click or typer (English, as they word it) in the user's language."""
    return i18n.translate(message, USAGE)


def _localize_one(cmd: click_core.Command) -> None:
    if cmd.help:
        cmd.help = _(inspect.cleandoc(cmd.help))
    if cmd.short_help:
        cmd.short_help = _(inspect.cleandoc(cmd.short_help))
    for param in cmd.params:
        if getattr(param, "help", None):
            param.help = _(param.help)  # type: ignore[attr-defined]


def _shorten(group: typer.core.TyperGroup) -> None:
    """Short helps that fit one line of the command list (click's shortening counts characters)."""
    names = group.commands
    room = WIDTH - _SHORT_GAP - max((len(name) for name in names), default=0)
    for cmd in names.values():
        if cmd.help and not cmd.help.isascii():
            cmd.short_help = shorten(first_sentence(cmd.short_help or cmd.help), room)


def _walk(command: click_core.Command) -> Iterator[click_core.Command]:
    yield command
    if isinstance(command, typer.core.TyperGroup):
        for sub in command.commands.values():
            yield from _walk(sub)


def first_sentence(text: str) -> str:
    paragraph = text.split("\n\n", 1)[0].replace("\n", "")
    end = paragraph.find("。")
    return paragraph if end < 0 else paragraph[:end]


def shorten(text: str, room: int) -> str:
    """`text` cut to `room` columns, with an ellipsis when cut."""
    if i18n.cells(text) <= room:
        return text
    while text and i18n.cells(text) > room - 1:
        text = text[:-1]
    return text.rstrip("，、；：,; ") + "…"


# A token is a run of spaces, an ASCII word, or one wide character with the punctuation that must not
# begin a line (so "服务器。" never leaves "。" alone at the start of the next line).
_CLOSERS = "，。、；：！？）」』】》,.;:!?)"
_WIDE = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_WIDE}])[ \t]*\n\s*|[ \t]*\n\s*(?=[{_WIDE}])")
_TOKEN = re.compile(rf"\s+|[^\s\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]+|.[{_CLOSERS}]*", re.DOTALL)


def wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns (display width), broken at spaces or between CJK characters."""
    lines, line = [], ""
    text = _CJK_BREAK.sub("", text)  # a line break next to a CJK character is no space
    for token in _TOKEN.findall(" ".join(text.split())):
        if line and i18n.cells(line + token.rstrip()) > width:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line += token
    return [*lines, line.rstrip()] if line.strip() else lines


class CellFormatter(formatting.HelpFormatter):
    """click's formatter, measuring text by display width and saying "Usage" in the user's language."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, _("Usage: ") if prefix is None else prefix)

    def write_heading(self, heading: str) -> None:
        self.write(f"{'':>{self.current_indent}}" + _("{heading}:").format(heading=heading) + "\n")

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        out = ["\n".join(indent + line for line in wrap(p, self.width - self.current_indent)) for p in paragraphs]
        self.write("\n\n".join(out) + "\n")

    def write_dl(self, rows: object, col_max: int = 30, col_spacing: int = 2) -> None:
        pairs = [(first, _(second)) for first, second in rows]  # type: ignore[attr-defined]
        first_col = min(max((i18n.cells(first) for first, _second in pairs), default=0), col_max) + col_spacing
        for first, second in pairs:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if i18n.cells(first) <= first_col - col_spacing:
                self.write(" " * (first_col - i18n.cells(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            lines = wrap(second, max(self.width - first_col - 2, 10)) or [""]
            self.write(lines[0] + "\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")
