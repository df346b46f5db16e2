"""The completion model: mcpctl's click command tree reduced to what a shell needs to complete it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Parameters whose values are server names from the config.
SERVER_PARAMS = frozenset({"name", "names", "server", "servers"})
# Plain-string parameters that are still paths (typed ones are recognised by their click type).
PATH_PARAMS = {"config": "file", "home": "dir", "file": "file", "path": "file", "directory": "dir"}
# Root options handed on to `mcpctl list --names` when they are already on the command line.
PASS_THROUGH = frozenset({"config", "home", "project"})


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    help: str
    name: str
    kind: str | None  # None for a flag; else what its value completes as (see value_kind)
    choices: tuple[str, ...] = ()
    eager: bool = False  # --help, --version: nothing else matters once they are given
    repeatable: bool = False
    pass_through: bool = False


@dataclass(frozen=True)
class Argument:
    name: str
    help: str
    kind: str
    variadic: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    help: str
    options: tuple[Option, ...]
    arguments: tuple[Argument, ...]
    subcommands: tuple[Command, ...]

    def walk(self) -> list[Command]:
        """This command and every command below it, depth first, in name order."""
        return [self, *(c for sub in self.subcommands for c in sub.walk())]

    @property
    def key(self) -> str:
        """The path as the shells see it: "" for mcpctl itself, "env rule add" for a nested command."""
        return " ".join(self.path)

    @property
    def value_flags(self) -> list[str]:
        """Every flag of an option that takes a value."""
        return [flag for option in self.options if option.kind is not None for flag in option.flags]


def value_kind(param: Any) -> str:
    """What a parameter's value completes as: server, choice, file, dir or text (nothing offered)."""
    kind = param.type
    if param.name in SERVER_PARAMS:
        return "server"
    if hasattr(kind, "choices"):
        return "choice"
    if hasattr(kind, "dir_okay"):  # click.Path, typer's Path
        return "file" if kind.file_okay else "dir"
    if getattr(kind, "name", "") == "filename":  # click.File
        return "file"
    return PATH_PARAMS.get(param.name, "text")


def command_tree(cmd: Any, path: tuple[str, ...] = (), parent: Any = None) -> Command:
    """The completion model of a click command and, for a group, of everything below it."""
    ctx = cmd.context_class(cmd, info_name=path[-1] if path else "mcpctl", parent=parent, **cmd.context_settings)
    params = [p for p in cmd.get_params(ctx) if not getattr(p, "hidden", False)]
    subs = getattr(cmd, "commands", {})
    return Command(
        path=path,
        help=cmd.get_short_help_str(limit=80),
        options=tuple(_option(p, root=not path) for p in params if p.param_type_name == "option"),
        arguments=tuple(_argument(p) for p in params if p.param_type_name == "argument"),
        subcommands=tuple(
            command_tree(subs[name], (*path, name), ctx) for name in sorted(subs) if not subs[name].hidden
        ),
    )


def _option(param: Any, root: bool) -> Option:
    count = bool(getattr(param, "count", False))
    return Option(
        flags=tuple(sorted((*param.opts, *param.secondary_opts), key=_short_first)),
        help=_one_line(param.help),
        name=param.name,
        kind=None if param.is_flag or count else value_kind(param),
        choices=_choices(param),
        eager=param.is_eager,
        repeatable=bool(param.multiple) or count,
        pass_through=root and param.name in PASS_THROUGH,
    )


def _argument(param: Any) -> Argument:
    return Argument(
        name=param.name,
        help=_one_line(getattr(param, "help", "")),
        kind=value_kind(param),
        variadic=param.nargs == -1,
        choices=_choices(param),
    )


def _choices(param: Any) -> tuple[str, ...]:
    return tuple(str(getattr(c, "value", c)) for c in getattr(param.type, "choices", ()))


def _short_first(flag: str) -> tuple[bool, str]:
    """-h before --help: click keeps help option names in a set, so their order must come from here."""
    return flag.startswith("--"), flag


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())
