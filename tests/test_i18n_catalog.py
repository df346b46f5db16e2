"""The catalogs: complete, placeholders kept, compiled into wheels; the language chosen from the environment;
text measured by display width (tables and help line up with CJK text)."""

from __future__ import annotations

import gettext
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mcpctl import i18n, pofile
from mcpctl.cli.help import wrap
from mcpctl.render import output

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / ".ci" / "catalog.py"
ZH = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "mcpctl.po"


def check(locale_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--locale-dir", str(locale_dir)] if locale_dir else []
    return subprocess.run(
        [sys.executable, str(CATALOG), "--check", *extra], capture_output=True, text=True, check=False, cwd=ROOT
    )


def test_every_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    proc = check()
    assert proc.returncode == 0, proc.stdout
    assert "0 problem(s)" in proc.stderr


def _copy_with(tmp_path: Path, msgid: str, msgstr: str) -> Path:
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    po = locale / "zh_CN" / "LC_MESSAGES" / "mcpctl.po"
    header, entries = pofile.read(po)
    assert msgid in {e.msgid for e in entries}
    changed = [pofile.Entry(e.msgid, msgstr if e.msgid == msgid else e.msgstr) for e in entries]
    pofile.write(po, header, changed)
    return locale


def test_the_check_fails_on_a_missing_translation(tmp_path: Path) -> None:
    proc = check(_copy_with(tmp_path, "{name} is not running", ""))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == ["zh_CN: untranslated: '{name} is not running'"]


def test_the_check_fails_when_a_placeholder_is_lost_or_renamed(tmp_path: Path) -> None:
    proc = check(_copy_with(tmp_path, "{name}: not running", "{server}：未在运行"))
    assert proc.returncode == 1
    assert "zh_CN: placeholders differ: '{name}: not running' has ['{name}'], the translation ['{server}']" in (
        proc.stdout
    )


def test_the_check_names_a_message_no_source_uses_any_more(tmp_path: Path) -> None:
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    po = locale / "zh_CN" / "LC_MESSAGES" / "mcpctl.po"
    header, entries = pofile.read(po)
    pofile.write(po, header, [*entries, pofile.Entry("an old message", "旧消息")])
    proc = check(locale)
    assert proc.returncode == 1
    assert proc.stdout.strip() == "zh_CN: stale (no source uses it): 'an old message'"


def test_the_check_names_a_msgid_written_in_two_entries(tmp_path: Path) -> None:
    # as a merge of two branches that each added the message leaves it: both entries translated, differently
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    po = locale / "zh_CN" / "LC_MESSAGES" / "mcpctl.po"
    header, entries = pofile.read(po)
    assert "{name} is not running" in {e.msgid for e in entries}
    pofile.write(po, header, [*entries, pofile.Entry("{name} is not running", "{name} 没有运行")])
    proc = check(locale)
    assert proc.returncode == 1
    assert proc.stdout.strip() == "zh_CN: duplicate (2 entries): '{name} is not running'"


def test_the_po_round_trips_and_compiles_to_a_mo_gettext_reads() -> None:
    header, entries = pofile.read(ZH)
    translations = gettext.GNUTranslations(io.BytesIO(pofile.mo_bytes(header, entries)))
    assert translations.gettext("{name} is not running") == "{name} 未在运行"
    assert translations.gettext("no such msgid") == "no such msgid"
    fuzzy = [pofile.Entry("ready", "就绪", fuzzy=True), pofile.Entry("failed", "")]
    assert gettext.GNUTranslations(io.BytesIO(pofile.mo_bytes(header, fuzzy))).gettext("ready") == "ready"


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({}, "en"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_CN.gb18030"}, "zh_CN"),
        ({"LANG": "zh_SG.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_Hans"}, "zh_CN"),  # a script subtag, as macOS names Simplified Chinese
        ({"MCPCTL_LANG": "zh-Hans-CN"}, "zh_CN"),
        ({"LANG": "zh_TW.UTF-8"}, "en"),  # Traditional: no catalog
        ({"LANG": "zh-Hant"}, "en"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),  # no catalog: English
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "C"}, "zh_CN"),
        ({"LC_ALL": "C", "LC_MESSAGES": "zh_CN.UTF-8"}, "en"),
        ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh_CN"),  # empty is unset
        ({"MCPCTL_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),
        ({"MCPCTL_LANG": "zh-cn", "LANG": "C"}, "zh_CN"),
    ],
)
def test_the_language_comes_from_mcpctl_lang_then_lc_all_lc_messages_lang(
    environ: dict[str, str], language: str
) -> None:
    assert i18n.choose(environ) == language


def test_display_width_counts_cjk_as_two_columns() -> None:
    assert i18n.cells("abc") == 3
    assert i18n.cells("工具") == 4
    assert i18n.cells("ＡＢ，。") == 8  # full-width forms
    assert i18n.cells("e\u0301") == 1  # a combining accent takes no column
    assert i18n.pad("工具", 6) == "工具  "


def test_a_table_with_cjk_text_lines_up(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        ["search", "在知识库中搜索文档", "query*"],
        ["add", "add two numbers", "a*, b*"],
        ["读取", "读取文件", "path*"],
    ]
    output.table(["TOOL", "DESCRIPTION", "ARGUMENTS"], rows)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    starts = {_column_starts(line) for line in lines}
    assert len(starts) == 1, lines  # every column begins at the same display column on every line


def _column_starts(line: str) -> tuple[int, ...]:
    """The display columns at which the 2nd and 3rd cells begin (cells are separated by 2+ spaces)."""
    import re

    return tuple(i18n.cells(line[: m.end()]) for m in re.finditer(r"\S {2,}(?=\S)", line))


def test_help_text_wraps_by_display_width_without_a_line_starting_with_punctuation() -> None:
    text = "启动服务器，并等待每个服务器完成 MCP initialize 握手。服务器只能向 stdout 写 JSON-RPC。" * 3
    lines = wrap(text, 30)
    assert all(i18n.cells(line) <= 30 for line in lines), lines
    assert not any(line[0] in "，。；：" for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert wrap("a few English words to wrap", 12) == ["a few", "English", "words to", "wrap"]


def test_a_failure_made_in_english_is_shown_translated_and_unknown_text_stays() -> None:
    from mcpctl.errors import ErrorType, Failure

    failure = Failure.of(ErrorType.COOLDOWN, name="demo", detail="cooling down", failures=3, left="41s")
    i18n.use("zh_CN")
    try:
        message, hint = i18n.failure_text(failure.type, failure.message, failure.hint)
        odd = i18n.failure_text(ErrorType.COOLDOWN, "something else entirely", "")
    finally:
        i18n.use(i18n.ENGLISH)
    assert (message, hint) == ("demo 连续失败 3 次后处于冷却期，41s 后才会再次尝试", "使用 --force 立即启动")
    assert odd == ("something else entirely", "")
    assert i18n.failure_text(failure.type, failure.message, failure.hint) == (failure.message, failure.hint)


def test_a_wheel_carries_the_compiled_catalog(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("mcpctl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        mo = archive.read("mcpctl/locale/zh_CN/LC_MESSAGES/mcpctl.mo")
    assert gettext.GNUTranslations(io.BytesIO(mo)).gettext("ready") == "就绪"
