"""A server's environment, resolved and validated before anything is spawned.

Precedence, lowest first: mcpctl's own environment (as `inherit_env` allows), then the `env_file`s in
order, then the config's `env` table. `${VAR}` in env values is looked up in the shell and the env
files; in args, cwd, url and headers it may also name the config's env variables. Values are secrets: they
leave this module only in the spec the shim receives through a pipe; reports carry names, sources
and statuses, never values.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from mcpctl.config.interpolate import NOT_SET, InterpolationError, expand_settings, interpolate
from mcpctl.config.model import ServerConfig
from mcpctl.hints import Any
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.redaction import secret_name

ALWAYS_INHERITED = ("PATH", "HOME")


# How a problem reads (English, as data and --json carry it); KNOWN lets the CLI show it translated.
PROBLEM = N_("{name}: {problems} (expected from {where})")  # missing
BROKEN = N_("{name}: {problems} (from {where})")  # set: where its value came from
LISTED = N_("{problem}, {problems}")  # every rule a value breaks; the last in KNOWN: it matches the most
MISSING, EMPTY = N_("missing"), N_("empty")
SET, UNSET, INVALID = N_("set"), N_("unset"), N_("invalid")  # a variable's status (MISSING too)
UNRESOLVED = N_("a variable it references is not set")
SHORTER, NO_MATCH = N_("shorter than {count} characters"), N_("does not match {pattern!r}")
FROM_TABLE, FROM_SHELL, FROM_FILE = N_("the config's env table"), N_("the shell"), N_("env_file")
FROM_BOTH = N_("the shell or env_file")
THROUGH = N_("{sources} through {references} in the config's env table")  # what an env value references
NOWHERE = N_("nowhere: add {name} to inherit_env, env_file or env")
AT = N_("{where}: {error}")  # env_file PATH: …, env.NAME: …
NOT_REGULAR, TOO_LARGE = N_("not a regular file"), N_("larger than 1 MiB")
KNOWN = (PROBLEM, BROKEN, THROUGH, SHORTER, NO_MATCH, NOWHERE, NOT_SET, AT, LISTED)
ENV_FILE_LIMIT = 1 << 20


@dataclass(frozen=True)
class EnvRule(Record):
    """A check on one variable: from required_env, [env_rules] tables, or `mcpctl env rule add`."""

    var: str
    required: bool = True
    non_empty: bool = False
    pattern: str | None = None
    min_length: int | None = None
    origin: str = "config"

    def problems(self, value: str | None) -> list[str]:
        """Every part of the rule `value` breaks (never the value itself: it is a secret)."""
        if value is None:
            return [MISSING] if self.required else []
        broken = [EMPTY] if self.non_empty and not value else []
        if self.min_length is not None and len(value) < self.min_length:
            broken.append(SHORTER.format(count=self.min_length))
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            broken.append(NO_MATCH.format(pattern=self.pattern))
        return broken

    def to_json(self) -> dict[str, Any]:
        return {
            "var": self.var,
            "required": self.required,
            "non_empty": self.non_empty,
            "pattern": self.pattern,
            "min_length": self.min_length,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class VarReport(Record):
    """One variable a server needs: where its value comes from and whether it is sound."""

    name: str
    source: str  # shell | env_file PATH | config | default | -
    status: str  # set | unset | missing | invalid
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "status": self.status, "problem": self.problem}


@dataclass(frozen=True)
class Resolution(Record):
    """The environment a server gets, plus what a person may see about it (no values)."""

    server: str
    env: dict[str, str]
    args: list[str]
    cwd: str
    url: str | None
    variables: list[VarReport]
    problems: list[str]
    secrets: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def sources(self) -> dict[str, str]:
        return {v.name: v.source for v in self.variables if v.status == "set"}


def resolve(
    server: ServerConfig,
    base_dir: Path,
    shell: Mapping[str, str],
    rules: list[EnvRule],
) -> Resolution:
    """Everything about the server's environment, every problem at once."""
    problems: list[str] = []
    layers: dict[str, tuple[str, str]] = {}  # name -> (value, source)
    for name, value in _inherited(server, shell).items():
        layers[name] = (value, "shell")
    for path in env_file_paths(server, base_dir):
        try:
            for name, value in parse_dotenv(read_env_file(path).decode("utf-8")).items():
                layers[name] = (value, f"env_file {path}")
        except OSError as exc:
            problems.append(AT.format(where=f"env_file {path}", error=exc.strerror))
        except ValueError as exc:
            problems.append(AT.format(where=f"env_file {path}", error=exc))
    referenced: set[str] = set()
    lookup = {name: value for name, (value, _) in layers.items()}
    lookup.update({k: v for k, v in shell.items() if k not in lookup})  # references may name any shell variable

    not_set: set[str] = set()  # referenced with no default, and set nowhere

    def expand(text: str, where: str, seen: list[str] | None = None) -> str:
        def note(name: str) -> None:
            referenced.add(name)
            if seen is not None:
                seen.append(name)

        try:
            return interpolate(text, lookup, note)
        except InterpolationError as exc:
            problems.append(AT.format(where=where, error=exc))
            if exc.unset is not None:
                not_set.add(exc.unset)
            return text

    unresolved: set[str] = set()  # its problem is already said: no rule needs to repeat it
    below = {name: source for name, (_, source) in layers.items()}  # what the env table's values reference
    came_from: dict[str, str] = {}  # an env table value's true source, for a rule it breaks
    for name, raw in server.env.items():
        before, seen = len(problems), list[str]()  # the variables this value references
        layers[name] = (expand(raw, f"env.{name}", seen), "config")
        if len(problems) > before:
            unresolved.add(name)
        came_from[name] = _through(seen, below, shell)
    lookup.update({name: value for name, (value, source) in layers.items() if source == "config"})  # for args
    args, cwd, url, headers = expand_settings(server, expand)
    env = {name: value for name, (value, _) in layers.items()}
    ruled = [r for r in rules if r.var not in unresolved]
    variables = _reports(server, layers, (referenced, not_set, unresolved), ruled, problems, came_from)
    # Inherited values are secrets when referenced or named like one (SECRET_NAME): a server may echo them.
    secrets = [v for name, (v, src) in layers.items() if src != "shell" or name in referenced or secret_name(name)]
    secrets += [env[r.var] for r in rules if r.var in env]
    secrets += list(headers.values())  # an Authorization value is a secret however it was written
    return Resolution(
        server=server.name,
        env=env,
        args=args,
        cwd=str((base_dir / Path(cwd).expanduser()).absolute()) if cwd else str(base_dir),
        url=url,
        variables=variables,
        problems=problems,
        secrets=secrets,
        headers=headers,
    )


def _inherited(server: ServerConfig, shell: Mapping[str, str]) -> dict[str, str]:
    if server.inherit_env is True:
        return dict(shell)
    names = set(ALWAYS_INHERITED) | (set(server.inherit_env) if isinstance(server.inherit_env, list | tuple) else set())
    return {name: shell[name] for name in names if name in shell}


def read_env_file(path: Path) -> bytes:
    """An env file's bytes; ValueError for one that is not a regular file (a device such as /dev/zero, a
    pipe: read for ever, even under --trust) or is larger than 1 MiB, OSError when it cannot be read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)  # a FIFO's open must not wait for a writer
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(NOT_REGULAR)
        data = handle.read(ENV_FILE_LIMIT + 1)
    if len(data) > ENV_FILE_LIMIT:
        raise ValueError(TOO_LARGE)
    return data


def env_file_paths(server: ServerConfig, base_dir: Path) -> list[Path]:
    files = [server.env_file] if isinstance(server.env_file, str) else list(server.env_file or ())
    return [(base_dir / Path(f).expanduser()).absolute() for f in files]


def _reports(
    server: ServerConfig,
    layers: dict[str, tuple[str, str]],
    references: tuple[set[str], set[str], set[str]],
    rules: list[EnvRule],
    problems: list[str],
    came_from: dict[str, str],
) -> list[VarReport]:
    """A line per variable a person cares about: configured, from env files, referenced, or ruled.
    `references`: the variables referenced, those of them not set with no default, and the `env` entries
    whose references could not be resolved (their problems are said already: the lines only show them);
    `came_from`: where each `env` entry's value came from."""
    referenced, not_set, unresolved = references
    by_var: dict[str, list[EnvRule]] = {}
    for rule in rules:
        by_var.setdefault(rule.var, []).append(rule)
    names = [n for n, (_, source) in layers.items() if source != "shell"]
    names += sorted((referenced | set(by_var)) - set(names))
    reports = []
    for name in names:
        value, source = layers.get(name, (None, "-"))
        found = list(dict.fromkeys(p for rule in by_var.get(name, []) for p in rule.problems(value)))
        if name in not_set and name not in layers:
            reports.append(VarReport(name, "-", MISSING, NOT_SET.format(name=name)))
            continue
        if name in unresolved:
            reports.append(VarReport(name, source, MISSING, UNRESOLVED))
            continue
        if name in referenced and name not in layers and source == "-":
            source = "default"  # only ever used through ${NAME:-default}
        if found:  # two rules on one variable may say the same: once ("; " parts problems of variables)
            listed = ", ".join(found)
            if value is None:
                problems.append(PROBLEM.format(name=name, problems=listed, where=_expected_from(name, server)))
            else:
                where = came_from.get(name) or (FROM_SHELL if source == "shell" else source)
                problems.append(BROKEN.format(name=name, problems=listed, where=where))
            status = MISSING if value is None else INVALID
            reports.append(VarReport(name, source, status, listed))
        else:
            reports.append(VarReport(name, source, SET if value is not None else UNSET))
    return reports


def _through(seen: list[str], below: dict[str, str], shell: Mapping[str, str]) -> str:
    """Where an `env` table value came from: the table itself, or the sources of what it references
    (the layers below it, the shell, or a reference's default)."""
    if not seen:
        return FROM_TABLE
    found = (below.get(n) or (FROM_SHELL if n in shell else N_("a default")) for n in seen)
    sources = ", ".join(dict.fromkeys(FROM_SHELL if s == "shell" else s for s in found))
    return THROUGH.format(sources=sources, references=", ".join(f"${{{n}}}" for n in dict.fromkeys(seen)))


def _expected_from(name: str, server: ServerConfig) -> str:
    if name in server.env:
        return FROM_TABLE
    shell = server.inherit_env is True or name in (server.inherit_env or ())
    if shell and server.env_file:
        return FROM_BOTH
    if shell or server.env_file:
        return FROM_SHELL if shell else FROM_FILE
    return NOWHERE.format(name=name)


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines; `export` prefixes, comments, blank lines; 'single' (literal) and "double" quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"line {number}: expected NAME=value")
        values[name] = _unquote(value.strip(), number)
    return values


def _unquote(value: str, number: int) -> str:
    if value[:1] in ("'", '"'):
        quote = value[0]
        end = value.find(quote, 1)
        if end < 0:
            raise ValueError(f"line {number}: unclosed {quote}")
        inner = value[1:end]
        if quote == "'":
            return inner
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
        return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), inner)
    return value.split(" #", 1)[0].rstrip()
