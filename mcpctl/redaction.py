"""Secrets never leave: replace the values of configured env vars with *** wherever text goes out."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"
# Values this short would mask ordinary words ("1", "on"); they are not secrets worth the noise.
_MIN_SECRET_LENGTH = 3


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
