"""Messages in the user's language (English and Simplified Chinese), through stdlib gettext.

The language is chosen once, on the first message: `MCPCTL_LANG`, else `LC_ALL`, `LC_MESSAGES`, `LANG`
(the first one set and not empty); `C`, `POSIX`, unset or a language without a catalog mean English.
English is the source language: the msgids are the English texts, so English needs no catalog.

Only what a person reads is translated, and only in the CLI: the shim's records, logs and events stay
English (they are searched and shared), and `--json` switches the CLI to English (`use("en")`).
Failures carry English text; `failure_text` translates one at render time by matching its message
against its type's template (mcpctl/errors.py) and filling the translated template with the same values,
its {detail} translated in turn: a known text, or a failure held in it (a crash loop's `last: MESSAGE`),
and its {exit} (errors.EXITS).
Other English made from `N_` templates outside the CLI (a config problem, a doctor finding, a usage error
of a module the API shares) is shown with `translate(text, KNOWN)`, KNOWN being the module's templates;
render/output.py knows which modules' KNOWN an error type's texts come from. Notes that name servers
(an import's, client setup's) are shown with `kept(text, NOTES)`: the template translated, its values not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from mcpctl.constants import ENV_LANG
from mcpctl.hints import TYPE_CHECKING

if TYPE_CHECKING:
    import gettext

    from mcpctl.errors import ErrorType

DOMAIN = "mcpctl"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
ENGLISH = "en"
LANGUAGES = (ENGLISH, "zh_CN")  # what a user can choose; each but English has mcpctl/locale/LANG/
_ENV_ORDER = (ENV_LANG, "LC_ALL", "LC_MESSAGES", "LANG")
# Simplified Chinese by other names, in lower case (a script subtag, `zh-Hans` as macOS writes it, included).
# Traditional (zh_TW, zh_HK, zh-Hant) has no catalog: English.
_ALIASES = {"zh": "zh_CN", "zh_sg": "zh_CN", "zh_hans": "zh_CN", "zh_hans_cn": "zh_CN", "zh_hans_sg": "zh_CN"}

_active: dict[str, tuple[str, _English | gettext.NullTranslations]] = {}  # "now": the language and catalog


class _English:
    """English, the messages' own language: no catalog, and no `gettext` import (~2 ms of each command)."""

    def gettext(self, message: str) -> str:
        return message


def choose(environ: Mapping[str, str]) -> str:
    """The language the environment asks for, as one of LANGUAGES."""
    for name in _ENV_ORDER:
        value = environ.get(name, "")
        if value:
            return normalize(value)
    return ENGLISH


def normalize(value: str) -> str:
    """`zh_CN.UTF-8`, `zh-cn`, `zh`, `zh-Hans` → `zh_CN`; `C`, `POSIX`, `en_US`, `zh_TW` or anything unknown → `en`."""
    code = value.split(".", 1)[0].split("@", 1)[0].replace("-", "_")
    lang, _, region = code.partition("_")
    code = f"{lang.lower()}_{region.upper()}" if region else lang.lower()
    code = _ALIASES.get(code.lower(), code)
    return code if code in LANGUAGES else ENGLISH


def use(language: str) -> None:
    """Translate from now on into `language` (one of LANGUAGES), whatever the environment says."""
    _active["now"] = (language, _load(language))


def language() -> str:
    """The language messages are shown in."""
    return _current()[0]


def _(message: str) -> str:
    """`message` in the user's language (itself when it has no translation). Never a lookup of "":
    gettext answers it with the catalog's header (Project-Id-Version: ...), not with an empty text."""
    return _translations().gettext(message) if message else message


def N_(message: str) -> str:
    """Marks a message for the catalog without translating it yet (module-level constants)."""
    return message


def _translations() -> _English | gettext.NullTranslations:
    return _current()[1]


def _current() -> tuple[str, _English | gettext.NullTranslations]:
    if "now" not in _active:
        use(choose(os.environ))
    return _active["now"]


def _load(lang: str) -> _English | gettext.NullTranslations:
    if lang == ENGLISH:
        return _English()
    import gettext

    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as file:
            return gettext.GNUTranslations(file)
    if po.exists():  # a checkout whose .po changed since the last build: compile it in memory
        import io

        from mcpctl import pofile

        return gettext.GNUTranslations(io.BytesIO(pofile.mo_bytes(*pofile.read(po))))
    return gettext.NullTranslations()


def cells(text: str) -> int:
    """How many terminal columns `text` takes: CJK (wide and full-width) characters take two."""
    if text.isascii():
        return len(text)
    return sum(_char_cells(char) for char in text)


def _char_cells(char: str) -> int:
    import unicodedata  # only for text that is not ASCII

    if unicodedata.combining(char) or char in "\u200b\u200d\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def pad(text: str, width: int) -> str:
    """`text` followed by spaces up to `width` columns (str.ljust counts characters, not columns)."""
    return text + " " * max(width - cells(text), 0)


def failure_text(kind: ErrorType, message: str, hint: str, known: Sequence[str] = ()) -> tuple[str, str]:
    """A failure's message and hint, translated (each as it was when its template does not match);
    `known`: templates its `detail` may be made of (see `translate`)."""
    from mcpctl.errors import KINDS

    info = KINDS.get(kind)
    if info is None or language() == ENGLISH:
        return message, hint
    return _filled(info.template, message, known), _filled(info.hint, hint, known) if hint else ""


def translate(text: str, known: Sequence[str] = (), depth: int = 5) -> str:
    """English `text` made elsewhere (a record, a check's finding) in the user's language: its own
    translation if it is a msgid, else the first of the `known` templates it fills, translated and
    filled with its values (each translated the same way), else `text` itself."""
    own = _(text)
    if own != text or depth == 0 or language() == ENGLISH:
        return own
    for template in known:
        if template.strip("{}").isidentifier():
            continue  # a template that is one field matches anything and says nothing
        found = _pattern(template).match(text)
        if found is not None:
            values = {name: translate(value, known, depth - 1) for name, value in found.groupdict().items()}
            return fill(_(template), values)
    return text


def kept(text: str, templates: Sequence[str]) -> str:
    """`text` in the user's language if it fills one of `templates`, its values kept as they are (a
    server's name that is also a msgid, a key, a path), else `text` itself."""
    for template in templates if language() != ENGLISH else ():
        found = _pattern(template).match(text)
        if found is not None:
            return fill(_(template), found.groupdict())
    return text


def _filled(template: str, text: str, known: Sequence[str]) -> str:
    translated = _translate(template, text, known, _NESTING)
    return translate(text, known) if translated is None else translated


_NESTING = 3  # how deep a failure's {detail} may hold another failure (a crash loop's last one holds one)


def _translate(template: str, text: str, known: Sequence[str], depth: int) -> str | None:
    """`text` translated if it fills `template` (None if not). Only its {detail} is translated, as a
    known text or a nested failure (`_detail`); the other fields (a name, a path, a count) stay as they are."""
    found = _pattern(template).match(text)
    if found is None:
        return None
    values = found.groupdict()
    if "detail" in values:
        values["detail"] = _detail(values["detail"], known, depth)
    if "exit" in values:  # how the process ended: "exit code 3", "killed by SIGKILL"
        from mcpctl.errors import EXITS

        values["exit"] = translate(values["exit"], EXITS)
    return fill(_(template), values)


def _detail(text: str, known: Sequence[str], depth: int) -> str:
    """A failure's {detail}: a msgid or a `known` text, else the message of a failure it holds (a crash
    loop's `last: MESSAGE`, a lost connection's reason), translated as that failure's type would be; else
    as it is (a server's words, an OS error)."""
    own = translate(text, known)
    if own != text or depth == 0:
        return own
    from mcpctl.errors import KINDS, LAST_FAILURE

    for template in (LAST_FAILURE, *(info.template for info in KINDS.values())):
        if template.strip("{}").isidentifier():
            continue  # "{detail}" matches anything: a tool's error, an internal one, is not a failure's text
        nested = _translate(template, text, known, depth - 1)
        if nested is not None:
            return nested
    return text


@cache
def _pattern(template: str) -> re.Pattern[str]:
    """A regex that matches `template` filled in, capturing each field's text."""
    import string

    parts, seen = [], set()
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is None:
            continue
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
        seen.add(name)
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `{field…}` replaced by values[field] as text (specs and conversions were
    applied when the English text was made), and a space where a value starting or ending in Latin
    script meets a CJK character of the template (`应来自 shell 环境`), as Chinese is typeset; none next
    to punctuation (a full-width bracket) or a space already there. The values themselves are kept as they are."""
    import string

    out = ""
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out = _joined(out, literal)
        if name is not None:
            out = _joined(out, values.get(name, "{" + name + "}"))
    return out


def _joined(left: str, right: str) -> str:
    if left and right and {_script(left[-1]), _script(right[0])} == {"cjk", "latin"}:
        return f"{left} {right}"
    return left + right


def _script(char: str) -> str:
    """'cjk' for a Chinese (or other wide) letter; 'latin' for a narrow letter or digit, or what opens or
    closes a Latin-script word (a path's / or ~, $VAR, an option's or a negative number's -, a quote, a
    backquote); '' for the rest (spaces, punctuation wide or narrow)."""
    if char.isalnum():
        return "cjk" if _char_cells(char) == 2 else "latin"
    return "latin" if char in "/~$-'\"`" else ""
