"""The hot commands' plain forms, parsed and run without typer.

`parse` takes a command line only when every word of it is one this parser understands exactly: the
global options, a hot command, its options (hot/options.py, which the typer app declares its own from)
and valid server names. Anything else, `--help`, a typo, `--timeout nan`, an invalid name, `--`, goes
to the typer app, which then says what a usage error says; so the two can differ in speed only.
"""

from __future__ import annotations

from mcpctl.control import early as ahead
from mcpctl.hints import NoReturn
from mcpctl.hot.context import Globals, guarded, is_name
from mcpctl.hot.options import GLOBAL, HOT, Hot, Opt, positive_seconds

Parsed = tuple[str, Globals, dict[str, object], list[str]]


def parse(argv: list[str]) -> Parsed | None:
    """(command, globals, its options, its arguments) for a plain hot command line; None for anything else."""
    values: dict[str, object] = {}
    i = _options(argv, 0, GLOBAL, values)
    if i is None or i >= len(argv) or argv[i] not in HOT:
        return None
    command, spec, g = argv[i], HOT[argv[i]], _globals(values)
    values, words = {}, []
    i += 1
    while i < len(argv):
        if not argv[i].startswith("-"):
            words.append(argv[i])
            i += 1
            continue
        step = _take(argv, i, spec.options, values)
        if step is None:
            return None
        i += step
    least, most = spec.arguments
    if len(words) < least or (most is not None and len(words) > most) or not _typed(values, spec):
        return None
    named = words if spec.all_names else words[:1]  # call's other words: the tool, key=value
    if not all(is_name(name) for name in named):
        return None
    return command, g, values, words


def _options(argv: list[str], i: int, opts: tuple[Opt, ...], values: dict[str, object]) -> int | None:
    """Where the options from argv[i] on end (the first word); None when one is not a plain one of `opts`."""
    while i < len(argv) and argv[i].startswith("-"):
        step = _take(argv, i, opts, values)
        if step is None:
            return None
        i += step
    return i


def _globals(values: dict[str, object]) -> Globals:
    def text(key: str) -> str | None:
        value = values.get(key)
        return None if value is None else str(value)

    return Globals(text("config"), text("home"), "quiet" in values, "trust" in values, text("project"))


def _typed(values: dict[str, object], spec: Hot) -> bool:
    """--timeout as positive finite seconds, --retries as a count (0 or more), defaults filled in; False when
    a value is not one (typer then says so)."""
    try:
        values["retries"] = retries = int(str(values.get("retries", spec.retries)))
        if retries < 0:
            return False
        if "timeout" not in values:
            values["timeout"] = spec.timeout
            return True
        timeout = float(str(values["timeout"]))
    except ValueError:
        return False
    values["timeout"] = timeout
    return positive_seconds(timeout)


def _take(argv: list[str], i: int, opts: tuple[Opt, ...], values: dict[str, object]) -> int | None:
    """How many words the option at argv[i] used (its value stored in `values`); None when it is not one
    of `opts` exactly, is given twice, or its value is missing or looks like an option."""
    flag, has_value, value = argv[i].partition("=") if argv[i].startswith("--") else (argv[i], "", "")
    opt = next((o for o in opts if flag in o.flags), None)
    if opt is None or opt.key in values or (has_value and not opt.takes_value):
        return None
    if not opt.takes_value:
        values[opt.key] = True
        return 1
    if has_value:
        values[opt.key] = value
        return 1
    if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
        return None
    values[opt.key] = argv[i + 1]
    return 2


def run(command: str, g: Globals, values: dict[str, object], words: list[str], early: ahead.Early | None) -> int:
    """Run a parsed hot command. `early`: the shim the entry point started ahead for `start NAME`, which
    the one launch of that server in that state dir takes (control/launch.py); else it is discarded."""
    flag = {key: bool(values.get(key)) for key in ("all", "all_projects", "nagios", "json", "no_start", "drain")}
    seconds = values["timeout"]
    timeout = None if seconds is None else float(str(seconds))
    if early is not None and not (command == "start" and len(words) == 1 and not flag["all"]):
        early.discard()
        early = None
    try:
        return _run(command, g, values, words, flag, timeout, early)
    finally:
        if early is not None:
            early.discard()


def _run(
    command: str,
    g: Globals,
    values: dict[str, object],
    words: list[str],
    flag: dict[str, bool],
    timeout: float | None,
    early: ahead.Early | None,
) -> int:
    if command in ("start", "restart", "stop"):
        from mcpctl.hot import lifecycle  # each command imports only the module of its own body
    elif command in ("status", "check"):
        from mcpctl.hot import commands
    else:
        from mcpctl.hot import session
    if command in ("start", "restart"):
        restart, wait, force = command == "restart", not values.get("no_wait"), bool(values.get("force"))
        return lifecycle.start(
            g, words, flag["all"], timeout, flag["json"], wait=wait, restart=restart, force=force, early=early
        )
    if command == "stop":
        return lifecycle.stop(g, words, flag["all"], timeout, flag["json"])
    if command == "status":
        return commands.status(g, words or None, flag["all_projects"], flag["json"])
    if command == "check":
        return commands.check(g, words or None, flag["all"], flag["nagios"], flag["json"])
    if command == "connect":
        return session.connect(g, words[0], flag["no_start"], flag["drain"])
    assert timeout is not None  # every session command has a default
    options = session.Options(
        flag["no_start"], timeout, int(str(values["retries"])), flag["json"], bool(values.get("unmasked"))
    )
    if command == "ping":
        return session.ping(g, words[0], options)
    if command == "tools":
        return session.tools(g, words[0], options)
    args = values.get("args")
    return session.call(g, words[0], words[1], words[2:], None if args is None else str(args), options)


def main(parsed: Parsed, early: ahead.Early | None = None) -> NoReturn:
    """Run a parsed hot command as the typer app would."""
    guarded(lambda: run(*parsed, early), bool(parsed[2].get("json")))
