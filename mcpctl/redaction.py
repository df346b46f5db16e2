"""Secrets never leave: replace the values of configured env vars with *** wherever text goes out.

One pass, correct by construction: text is masked whole, before anything cuts, escapes or splits it.
Each value is masked in its common encodings too (JSON- and Python-escaped, URL-encoded), and a
multi-line value (a PEM key) line by line as well, since logs and tables hold it a line at a time.
Text that was already cut (`cut`) also loses a trailing piece that begins a secret.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable

from mcpctl.hints import Any

MASK = "***"
# Values this short would mask ordinary words ("1", "on"); they are not secrets worth the noise.
MIN_SECRET_LENGTH = 3
# Env var names whose inherited values are secrets too (a server may echo its whole environment).
SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = {form for secret in secrets for form in _forms(secret) if len(form) >= MIN_SECRET_LENGTH}
        self._forms = sorted(forms, key=len, reverse=True)  # longest first: the regex takes the first that fits
        self._pattern = re.compile("|".join(map(re.escape, self._forms))) if forms else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text

    def cut(self, text: str) -> str:
        """`text` masked, when it was cut from a longer one: a trailing start of a secret is masked too."""
        text = self(text)
        size = max((_overlap(text, form) for form in self._forms), default=0)
        return text[:-size] + MASK if size else text

    def __bool__(self) -> bool:
        return self._pattern is not None


def mask_data(redact: Callable[[str], str], value: Any) -> Any:
    """`value` (JSON's shapes) with every string in it masked, keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): mask_data(redact, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(redact, v) for v in value]
    return value


@functools.cache  # asked of every inherited variable for every server: fifty servers asked it 2,000 times
def secret_name(name: str) -> bool:
    """An env var whose value is masked even when the server only inherits it from the shell."""
    return SECRET_NAME.search(name) is not None


def _forms(secret: str) -> set[str]:
    pieces = {secret, *(line.strip() for line in secret.splitlines())}
    found: set[str] = set()
    for piece in pieces:
        found |= {piece, json.dumps(piece)[1:-1], json.dumps(piece, ensure_ascii=False)[1:-1], repr(piece)[1:-1]}
        for plus, keep in _URL_ENCODINGS:
            encoded = _percent(piece, plus, keep)
            found |= {encoded, re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    return found


def _overlap(text: str, form: str) -> int:
    """The length of the longest end of `text` that begins `form` (and is not all of it)."""
    for size in range(min(len(form) - 1, len(text)), 0, -1):
        if text.endswith(form[:size]):
            return size
    return 0


# The URL encodings a secret is seen in: (spaces as "+", characters left as they are besides the unreserved).
_URL_ENCODINGS = (
    (False, ""),  # urllib.parse.quote(safe="")
    (True, ""),  # urllib.parse.quote_plus
    (False, "/"),  # urllib.parse.quote, whose default keeps "/"
    (False, "!*'()"),  # JavaScript's encodeURIComponent
    (False, "!*'();/?:@&=+$,#"),  # JavaScript's encodeURI
)


def _percent(text: str, plus: bool, keep: str = "") -> str:
    """URL encoding (as urllib.parse.quote with `keep` as its safe characters, or quote_plus), without
    importing urllib."""
    kept = _UNRESERVED | frozenset(keep.encode())
    out = []
    for byte in text.encode("utf-8"):
        if byte in kept:
            out.append(chr(byte))
        elif plus and byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)
