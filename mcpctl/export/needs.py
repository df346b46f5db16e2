"""What a server needs from the machine it is exported to: variables from outside, env files, a port.

Names only, never values: an exported unit or manifest says where a secret comes from, not what it is.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from mcpctl.config.environment import ALWAYS_INHERITED, env_file_paths, parse_dotenv, read_env_file
from mcpctl.config.interpolate import InterpolationError, expand_settings, interpolate
from mcpctl.config.model import Config, ServerConfig
from mcpctl.lean import Record, dataclass

# Where the exported container recipe (examples/Containerfile) puts the config and the state dir, and its user.
IMAGE_CONFIG = "/etc/mcpctl/mcpctl.toml"
IMAGE_VOLUME = "/var/lib/mcpctl"  # the image user's own folder (0700), where Compose mounts its volume
IMAGE_HOME = f"{IMAGE_VOLUME}/state"  # the state dir, a folder mcpctl makes in it
IMAGE_UID = 10001
DEFAULT_IMAGE = "localhost/mcpctl:latest"
PLACEHOLDER = "REPLACE_ME"


@dataclass(frozen=True)
class Needs(Record):
    """One server, as an exporter sees it."""

    server: ServerConfig
    variables: tuple[str, ...]  # to come from outside (required, or `${VAR}` without a default): secret
    env_files: tuple[Path, ...]
    image_env_files: tuple[str, ...]  # each of env_files where the config baked into the image finds it
    port: int | None  # a `url` server that mcpctl itself launches listens here


def needs_of(config: Config, server: ServerConfig, rule_vars: list[str]) -> Needs:
    """`rule_vars`: the variables env rules require of this server (required_env, [env_rules], the CLI's)."""
    files = tuple(env_file_paths(server, config.base_dir))
    outside = set(ALWAYS_INHERITED) | _defined_in(files)
    # `${VAR}` in env values is looked up in the shell and the env files; in the other settings expanded at
    # run time (args, cwd, url, headers: config.interpolate.expand_settings) it may also name the config's
    # own env variables (as config.environment resolves them).
    from_env = [name for name in _referenced(server.env.values()) if name not in outside]
    elsewhere: list[str] = []

    def gather(text: str, where: str) -> str:
        elsewhere.append(text)
        return text

    expand_settings(server, gather)
    from_rest = [name for name in _referenced(elsewhere) if name not in outside | set(server.env)]
    required = [name for name in rule_vars if name not in outside | set(server.env)]
    variables = tuple(dict.fromkeys([*required, *from_env, *from_rest]))
    return Needs(server, variables, files, _in_image(server), _port(server))


def _in_image(server: ServerConfig) -> tuple[str, ...]:
    """The env_file paths as the image resolves them: relative to its config's folder, `~` its user's home."""
    written = [server.env_file] if isinstance(server.env_file, str) else list(server.env_file or ())
    home = posixpath.dirname(IMAGE_CONFIG)
    paths = [IMAGE_VOLUME + f[1:] if f == "~" or f.startswith("~/") else f for f in written]
    return tuple(posixpath.normpath(posixpath.join(home, path)) for path in paths)


def placeholder_env_file(path: Path) -> str:
    """`path` as a dotenv file of placeholders: its variable names, never its values."""
    try:
        names = parse_dotenv(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"# the variables of {path} (it could not be read when this was exported)\n"
    return "".join(f"{name}={PLACEHOLDER}\n" for name in names)


class _Recorder(Mapping[str, str]):
    """A lookup that has every variable; it remembers those looked up without a default."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        self.names.append(key)
        return ""

    def get(self, key: str, default: object = None) -> str:
        return ""  # `${VAR:-default}`: optional, not needed from outside

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _referenced(texts: Iterable[str]) -> list[str]:
    recorder = _Recorder()
    for text in texts:
        try:
            interpolate(text, recorder)
        except InterpolationError:
            continue  # a malformed reference: `mcpctl config check` says so, not the exporter
    return recorder.names


def _defined_in(files: tuple[Path, ...]) -> set[str]:
    names: set[str] = set()
    for path in files:
        try:
            names |= set(parse_dotenv(read_env_file(path).decode("utf-8")))
        except (OSError, ValueError):
            continue
    return names


def _port(server: ServerConfig) -> int | None:
    if not server.url or not server.command:
        return None
    try:
        parts = urlsplit(re.sub(r"\$\{[^}]*\}", "x", server.url))
        return parts.port
    except ValueError:
        return None


def mcpctl_command() -> list[str]:
    """The absolute command that runs this mcpctl: its script, else this Python with `-m mcpctl`."""
    script = Path(sys.argv[0])
    if script.name == "mcpctl" and script.exists():
        return [str(script.absolute())]
    found = shutil.which("mcpctl")
    if found and Path(found).parent == Path(sys.executable).parent:
        return [str(Path(found).absolute())]
    return [sys.executable, "-m", "mcpctl"]


def dns_name(name: str) -> str:
    """`name` as a Kubernetes object name (RFC 1123: lowercase letters, digits and '-'), made unique if changed."""
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "server"
    if clean == name:
        return name[:63]
    import hashlib

    return f"{clean[:56]}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
