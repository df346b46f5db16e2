"""The check of each setting's value, by its kind (mcpctl.settings), and of [env_rules.VAR] tables.

A check returns None for a good value, else what is wrong with it, in words that name what was expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.settings import SETTINGS, Kind, Setting

Check = Callable[[object], str | None]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RULE_FIELDS = {"required", "non_empty", "pattern", "min_length"}
# How a check's problem reads (English: --json carries it); KNOWN lets the CLI show it translated.
EXPECTED, ONE_OF, THE_STRING = N_("expected {what}, got {kind}"), N_("one of {choices}"), N_("the string {value!r}")
SECONDS, BOOLEAN, TEXT = N_("a positive number of seconds"), N_("true or false"), N_("a non-empty string")
STRINGS, NAMES = N_("a list of strings"), N_("a list of variable names")
AT_LEAST_1, AT_LEAST_0 = N_("a whole number of at least 1"), N_("a whole number of at least 0")
A_BOOLEAN, A_STRING, A_NUMBER = N_("a boolean"), N_("a string"), N_("a number")
STRING_TABLE, QUOTE_IT = N_('a table of NAME = "value"'), N_("expected a string (quote the value), got {kind}")
KNOWN = (QUOTE_IT, EXPECTED, ONE_OF, THE_STRING)  # QUOTE_IT first: EXPECTED matches it too


def rules_problems(rules: dict[str, Any]) -> list[str]:
    """Problems with a table of [env_rules.VAR] rules, each naming the variable and the field."""
    problems = []
    for var, rule in rules.items():
        if not ENV_NAME.fullmatch(var):
            problems.append(f"{var}: not a variable name")
        elif not isinstance(rule, dict):
            problems.append(f"{var}: expected a table of required, non_empty, pattern, min_length")
        else:
            problems.extend(f"{var}{problem}" for problem in _rule_problems(rule))
    return problems


def _rule_problems(rule: dict[str, Any]) -> list[str]:
    problems = []
    for key in sorted(set(rule) - _RULE_FIELDS):
        problems.append(f": unknown field {key!r} (rules have {', '.join(sorted(_RULE_FIELDS))})")
    for key in ("required", "non_empty"):
        if key in rule and not isinstance(rule[key], bool):
            problems.append(f".{key}: expected true or false")
    if "pattern" in rule and (error := _regex(rule["pattern"])):
        problems.append(f".pattern: {error}")
    length = rule.get("min_length", 0)
    if isinstance(length, bool) or not isinstance(length, int):
        problems.append(".min_length: expected a whole number")
    return problems


def _env_names(value: object) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and ENV_NAME.fullmatch(v) for v in value):
        return _expected(NAMES, value)
    return None


def _string_or_list(value: object) -> str | None:
    if isinstance(value, str) and value:
        return None
    return _string_list(value)


def _bool_or_names(value: object) -> str | None:
    if isinstance(value, bool) or _env_names(value) is None:
        return None
    return f"expected true, false or a list of variable names, got {_kind(value)}"


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else _expected(BOOLEAN, value)


def _table(value: object) -> str | None:
    return None if isinstance(value, dict) else f"expected a table of tables, got {_kind(value)}"


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: object) -> str | None:
        if value not in choices:
            return _expected(ONE_OF.format(choices=", ".join(map(repr, choices))), value)
        return None

    return check


def _regex(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"expected a regular expression, got {_kind(value)}"
    try:
        re.compile(value)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


def _positive_int(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return _expected(AT_LEAST_1, value)
    return None


def _count(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return _expected(AT_LEAST_0, value)
    return None


def _string(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return _expected(TEXT, value)
    return None


def _string_list(value: object) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return _expected(STRINGS, value)
    return None


def _string_table(value: object) -> str | None:
    """`env` and `headers` as a whole; each value is judged by `problems`."""
    return None if isinstance(value, dict) else _expected(STRING_TABLE, value)


def problems(check: Check, value: object) -> list[tuple[str, str]]:
    """What is wrong with a field's value, as (where under the field, what): "" is the field itself; each
    value of an env or headers table that is not a string is a problem of its own, said by its kind,
    never shown (the values are secrets)."""
    error = check(value)
    if error or check is not _string_table or not isinstance(value, dict):
        return [("", error)] if error else []
    wrong = [(key, item) for key, item in value.items() if not isinstance(item, str)]
    return [(f".{key}", QUOTE_IT.format(kind=_blind_kind(item))) for key, item in wrong]


def _url(value: object) -> str | None:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        return "expected an http:// or https:// URL"
    return None


def _positive_seconds(value: object) -> str | None:
    # nan and inf are TOML floats: nan compares false with everything, so `value <= 0` alone lets it pass
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return _expected(SECONDS, value)
    return None


def _glob_lists(value: object) -> str | None:
    if not isinstance(value, dict):
        return f"expected a table with allow and deny lists of globs, got {_kind(value)}"
    for key, item in value.items():
        if key not in ("allow", "deny"):
            return f"unknown field {key!r} (a tools table has allow and deny)"
        if _string_list(item):
            return f"{key}: expected a list of glob patterns, got {_kind(item)}"
    return None


def _blind_kind(value: object) -> str:
    """What `value` (not a string) is, without a word of what it says: `_kind` but for a number's digits."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return A_NUMBER
    return _kind(value)


def _expected(what: str, value: object) -> str:
    return EXPECTED.format(what=what, kind=_kind(value))


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return A_BOOLEAN
    if isinstance(value, str):
        return THE_STRING.format(value=value) if len(value) < 40 else A_STRING
    if isinstance(value, int | float):  # the number itself: `stop_timeout = 0` is out of range, not mistyped
        return str(value)
    names: dict[type, str] = {list: N_("a list"), dict: N_("a table")}
    return names.get(type(value), type(value).__name__)


BY_KIND: dict[Kind, Check] = {
    Kind.TEXT: _string,
    Kind.TEXTS: _string_list,
    Kind.TEXT_TABLE: _string_table,
    Kind.URL: _url,
    Kind.SECONDS: _positive_seconds,
    Kind.POSITIVE: _positive_int,
    Kind.COUNT: _count,
    Kind.FLAG: _boolean,
    Kind.REGEX: _regex,
    Kind.TABLES: _table,
    Kind.PATHS: _string_or_list,
    Kind.ENV_NAMES: _env_names,
    Kind.FLAG_OR_ENV_NAMES: _bool_or_names,
    Kind.GLOB_LISTS: _glob_lists,
}


def _check(setting: Setting) -> Check:
    return _one_of(setting.choices) if setting.kind == Kind.CHOICE else BY_KIND[setting.kind]


FIELDS: dict[str, Check] = {setting.name: _check(setting) for setting in SETTINGS}
