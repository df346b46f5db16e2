"""The one masking pass and the log's escaping, as functions: every shape of a secret, every cut."""

from __future__ import annotations

import json
import urllib.parse

from mcpctl.logfile import escape, parse
from mcpctl.redaction import Redactor, mask_data, secret_name

WEIRD = 'a\tb\\c"d-secret'
PEM = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n0dB5p3kq2Ha9zLs0YlKN\n-----END KEY-----"


def test_a_value_is_masked_raw_escaped_and_encoded() -> None:
    redact = Redactor([WEIRD])
    for form in (WEIRD, json.dumps(WEIRD)[1:-1], repr(WEIRD)[1:-1], urllib.parse.quote(WEIRD, safe="")):
        assert redact(f"<{form}>") == "<***>", form
    assert Redactor(["two words/here"])(urllib.parse.quote_plus("two words/here").lower()) == "***"
    key = "AbC/dEf+GhI/jK!(l)*'="  # urllib's quote keeps "/"; JavaScript's encodeURIComponent keeps !*'()
    redact = Redactor([key])
    for form in (
        urllib.parse.quote(key),
        urllib.parse.quote(key, safe="!*'()"),
        urllib.parse.quote(key, safe="/!*'();?:@&=+$,#"),
    ):
        assert redact(f"key={form}&") == "key=***&", form


def test_a_multi_line_value_is_masked_whole_and_line_by_line() -> None:
    redact = Redactor([PEM])
    assert redact(f"key={PEM}.") == "key=***."
    assert [redact(line) for line in PEM.splitlines()] == ["***"] * 4


def test_a_cut_text_loses_a_trailing_start_of_a_secret() -> None:
    redact = Redactor(["tok-0123456789"])
    assert redact.cut("the token is tok-0123") == "the token is ***"
    assert redact.cut("nothing here") == "nothing here"
    assert redact("the token is tok-0123") == "the token is tok-0123"  # uncut text is not guessed at


def test_short_values_are_not_masked_and_longest_wins() -> None:
    redact = Redactor(["ab", "abcdef", "abcdefghij"])
    assert redact("ab abcdefghij abcdef") == "ab *** ***"
    assert not Redactor(["x"])


def test_data_is_masked_everywhere_in_it() -> None:
    redact = Redactor(["s3cr3t-value"])
    data = {"content": [{"text": "key s3cr3t-value"}], "s3cr3t-value": 1, "n": 2}
    assert mask_data(redact, data) == {"content": [{"text": "key ***"}], "***": 1, "n": 2}


def test_secret_names() -> None:
    assert all(secret_name(n) for n in ("GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "api_key"))
    assert not any(secret_name(n) for n in ("PATH", "HOME", "LANG", "TZ"))


def test_a_servers_text_is_escaped_and_never_ours() -> None:
    assert escape("\x1b[2J\rfake\x07\x9b") == "\\x1b[2J\\x0dfake\\x07\\x9b"
    assert escape("[mcpctl] ready") == "\\x5bmcpctl] ready"
    assert escape("a\u202eb\u2066c\u200fd") == "a\\u202eb\\u2066c\\u200fd"  # bidi controls: shown, not obeyed
    assert escape("[mcpctl] ready", ours=True) == "[mcpctl] ready"
    line = parse("2026-11-25T09:17:41.486Z " + escape("[mcpctl] ready in 0.1s"))
    assert not line.ours
    assert "\x1b" not in parse("2026-11-25T09:17:41.486Z \x1b[31mred").render()
