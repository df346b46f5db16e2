"""Validation rules for environment variables: from the config, and added at run time from the CLI.

Rules added with `mcpctl env rule add` live in the state dir and apply from the next start, each
project's in its own env_rules.json (projects/PROJECT/, beside its servers): a rule for `time` in one
project never touches another project's `time`. A rule for server "*" applies to every server of
the project. A project with no file of its own yet takes the state dir's top-level one, where an older
mcpctl kept the rules of every project, until its first `env rule add` or `rm` gives it its own.
"""

from __future__ import annotations

import json

from mcpctl.config.environment import EnvRule
from mcpctl.config.model import Config, ServerConfig
from mcpctl.errors import ConfigError
from mcpctl.hints import Any
from mcpctl.paths import Paths
from mcpctl.privdir import read_own
from mcpctl.state import write_atomic

EVERY_SERVER = "*"


FILE = "env_rules.json"


def stored(paths: Paths) -> list[dict[str, Any]]:
    """The project's rules (see the module's note for a project with no file of its own)."""
    for path in dict.fromkeys((paths.root / FILE, paths.home / FILE)):  # one path without a project
        try:
            data = json.loads(read_own(path))
        except (FileNotFoundError, NotADirectoryError):
            continue  # no rules added yet (or no state dir: the command will say so when it needs one)
        except (OSError, ValueError, RecursionError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc})", "remove it and add the rules again") from exc
        rules = data.get("rules") if isinstance(data, dict) else None
        if not isinstance(rules, list):
            raise ConfigError(f"{path} has no rules list", "remove it and add the rules again")
        return [r for r in rules if isinstance(r, dict) and isinstance(r.get("var"), str)]
    return []


def save(paths: Paths, rules: list[dict[str, Any]]) -> None:
    """The project's rules, in its own file from now on."""
    paths.ensure()
    blob = json.dumps({"schema": 1, "rules": rules}, indent=1, sort_keys=True).encode() + b"\n"
    write_atomic(paths.root / FILE, blob)


def add(paths: Paths, server: str, rule: EnvRule) -> list[dict[str, Any]]:
    """Add (or replace) the rule for `server`'s variable; the caller holds the state lock."""
    rules = [r for r in stored(paths) if (r.get("server"), r.get("var")) != (server, rule.var)]
    rules.append({"server": server, **{k: v for k, v in rule.to_json().items() if k != "origin"}})
    save(paths, rules)
    return rules


def remove(paths: Paths, server: str, var: str) -> bool:
    rules = stored(paths)
    kept = [r for r in rules if (r.get("server"), r.get("var")) != (server, var)]
    if len(kept) == len(rules):
        return False
    save(paths, kept)
    return True


def rules_for(server: ServerConfig, config: Config, saved: list[dict[str, Any]]) -> list[EnvRule]:
    """Every rule that applies to `server`: required_env, [env_rules], [servers.X.env_rules], the CLI's."""
    rules = [EnvRule(var, origin="required_env") for var in server.required_env]
    rules += [_rule(var, table, "config [env_rules]") for var, table in config.env_rules.items()]
    rules += [_rule(var, table, f"config [servers.{server.name}.env_rules]") for var, table in server.env_rules.items()]
    for entry in saved:
        if entry.get("server") in (EVERY_SERVER, server.name):
            rules.append(_rule(entry["var"], entry, f"mcpctl env rule ({entry.get('server')})"))
    return rules


def listing(config: Config, saved: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule, once, with the server it applies to ("*" for all) and where it comes from."""
    rows = [{**_rule(var, table, "config [env_rules]").to_json(), "server": EVERY_SERVER}
            for var, table in config.env_rules.items()]  # fmt: skip
    for server in config.servers.values():
        own = [EnvRule(var, origin="required_env") for var in server.required_env]
        own += [_rule(var, table, "config [servers.NAME.env_rules]") for var, table in server.env_rules.items()]
        rows += [{**rule.to_json(), "server": server.name} for rule in own]
    return rows + [{**entry, "origin": "mcpctl env rule"} for entry in saved]


def _rule(var: str, table: Any, origin: str) -> EnvRule:
    return EnvRule(
        var=var,
        required=bool(table.get("required", True)),
        non_empty=bool(table.get("non_empty", False)),
        pattern=table.get("pattern"),
        min_length=table.get("min_length"),
        origin=origin,
    )
