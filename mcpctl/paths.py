"""Every path mcpctl uses comes from here: the user's dirs (the XDG rule, platformdirs off Linux), overridden
by env vars and flags."""

from __future__ import annotations

import os
import sys
from functools import cached_property
from pathlib import Path

from mcpctl.constants import CONFIG_FILENAME, ENV_CONFIG, ENV_HOME
from mcpctl.errors import ConfigError
from mcpctl.lean import Record, dataclass
from mcpctl.privdir import blocked, check_home, judge_ancestors, judge_below, private_dir

# AF_UNIX paths longer than this fail ("AF_UNIX path too long"); keep a margin below 108.
_MAX_SOCKET_PATH = 100


def default_home() -> Path:
    """The user's state dir for mcpctl (platformdirs' user_state_dir)."""
    return _user_dir("state", "XDG_STATE_HOME", ".local/state")


def user_config_dir() -> Path:
    """The user's config dir for mcpctl (platformdirs' user_config_dir)."""
    return _user_dir("config", "XDG_CONFIG_HOME", ".config")


def _user_dir(kind: str, variable: str, fallback: str) -> Path:
    """On Linux, the XDG rule itself (an absolute $XDG_..._HOME, else ~/FALLBACK): importing platformdirs
    cost ~25 ms of every command run without --home or $MCPCTL_HOME. Elsewhere, platformdirs."""
    if sys.platform.startswith("linux"):
        base = os.environ.get(variable, "")
        return Path(base if os.path.isabs(base) else os.path.join(os.path.expanduser("~"), fallback), "mcpctl")
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")("mcpctl", appauthor=False))


def resolve_home(flag: str | None = None) -> Path:
    """The state directory: --home, then $MCPCTL_HOME, then the platform's user state dir."""
    return chosen_home(flag) or default_home()


def chosen_home(flag: str | None = None) -> Path | None:
    """The state directory --home or $MCPCTL_HOME names (they win over a config's `home`), if any."""
    chosen = flag or os.environ.get(ENV_HOME)
    return Path(chosen).expanduser().absolute() if chosen else None


@dataclass(frozen=True)
class Paths(Record):
    """The state dir's files. With a `project`, a server's files live under projects/PROJECT/ and its
    sockets under run/PROJECT/; without one, in the layout before projects (servers/NAME directly).
    `legacy` names the project's servers that a shim of that layout still serves (see mcpctl.legacy).
    (Its directories are cached: `stop --all` of fifty servers built ~3000 paths.) Every directory it
    gives is judged first, down from the state dir (`privdir.judge_below`: a symlink, someone else's or
    a shared folder is refused, exit 1), for the commands that read as for those that write."""

    home: Path
    project: str | None = None
    legacy: frozenset[str] = frozenset()

    @property
    def lock(self) -> Path:
        return self.home / "lock"

    @cached_property
    def _judged(self) -> set[Path]:
        """The directories judged already by this Paths: each costs one lstat per command."""
        return set()

    def _trusted(self, directory: Path) -> Path:
        """`directory`, once every existing folder from the state dir down to it is judged ours alone."""
        if directory not in self._judged:
            judge_below(self.home, directory, self._judged)
        return directory

    @cached_property
    def root(self) -> Path:
        """Where this project's servers, logs and config history live."""
        return self._trusted(self.home if self.project is None else self.home / "projects" / self.project)

    @cached_property
    def servers(self) -> Path:
        return self._trusted(self.root / "servers")

    @cached_property
    def logs(self) -> Path:
        return self._trusted(self.root / "logs")

    def _of(self, name: str) -> Paths:
        """The layout `name`'s files are in: the old one while its directory there still exists."""
        if name in self.legacy and (self.home / "servers" / name).is_dir():
            return Paths(self.home)
        return self

    def server_dir(self, name: str) -> Path:
        if name in self._server_dirs:
            return self._server_dirs[name]
        paths = self._of(name)
        found = paths._trusted(paths.servers / name)
        if name not in self.legacy:  # where a server of the old layout is changes when it moves
            self._server_dirs[name] = found
        return found

    @cached_property
    def _server_dirs(self) -> dict[str, Path]:
        """Each server's directory, once judged (every file of a server is in it: asked for again and again)."""
        return {}

    def state_file(self, name: str) -> Path:
        return self.server_dir(name) / "state.json"

    def events_file(self, name: str) -> Path:
        return self.server_dir(name) / "events.jsonl"

    def instance_lock(self, name: str) -> Path:
        return self.server_dir(name) / "instance.lock"

    def log_file(self, name: str) -> Path:
        return self._of(name).logs / f"{name}.log"

    def log_files(self, name: str) -> list[Path]:
        """NAME.log and its rotations NAME.log.N (not another server's: `a.log*` also matches a.log.1's log)."""
        logs = self._of(name).logs
        found = sorted(logs.glob(f"{name}.log*")) if logs.is_dir() else []
        return [path for path in found if _rotation(path.name[len(f"{name}.log") :])]

    def socket(self, name: str) -> Path:
        """The shim's MCP socket (what `connect` and every MCP client of the shared session use)."""
        return self._of(name)._socket(name, ".sock")

    def control_socket(self, name: str) -> Path:
        """The shim's control socket: `mcpctl/...` methods, for the CLI only (never reachable through MCP)."""
        return self._of(name)._socket(name, ".ctl.sock")

    def _socket(self, name: str, suffix: str) -> Path:
        """Under the state dir when the longer of the server's two socket paths is short enough, else a
        hashed name in a private runtime dir: the two are always side by side, in the one folder that
        ensure_server makes (where only `NAME.ctl.sock` was too long, it went to a runtime dir nobody made,
        and the shim could not bind it)."""
        run = self.home / "run"
        folder = run if self.project is None else run / self.project
        near = folder / f"{name}{suffix}"
        if len(os.fsencode(folder / f"{name}.ctl.sock")) <= _MAX_SOCKET_PATH:
            self._trusted(folder)
            return near
        # Lazy: hashlib alone adds ~3.7 MB RSS to the shim, and this fallback is rare.
        import hashlib

        digest = hashlib.sha256(os.fsencode(near)).hexdigest()[:20]
        return self._runtime / f"{digest}.sock"

    @cached_property
    def _runtime(self) -> Path:
        """The runtime dir, judged as the state dir's folders are when it exists (made by ensure_server),
        in a folder nobody else can rename it in (a $TMPDIR of another user's is refused)."""
        runtime = runtime_dir()
        judge_ancestors(runtime, "runtime dir")
        judge_below(runtime.parent, runtime, self._judged)
        return runtime

    def ensure(self) -> None:
        """Create the state dir (0700) and its subdirectories, or say clearly why that is impossible.
        Once for this Paths (a command makes its own): a start of fifty servers checked it 150 times."""
        if "_ensured" in self.__dict__:
            return
        check_home(self.home)
        for directory in (self.root, self.servers, self.logs, self.home / "run"):
            private_dir(directory)
        self.__dict__["_ensured"] = True  # frozen: kept as cached_property keeps its values

    def ensure_server(self, name: str) -> None:
        """Make the server's directories; a server of the old layout whose shim is gone moves first."""
        self.ensure()
        if self._of(name) is not self:
            from mcpctl import legacy  # lazy: only a state dir of the old layout needs it

            legacy.move(self, name)
        private_dir(self.server_dir(name))
        private_dir(self.socket(name).parent)

    @property
    def config_dir(self) -> Path:
        """Applied config versions, the key of their digests, and the lock of config changes."""
        return self._trusted(self.root / "config")

    @property
    def history(self) -> Path:
        return self._trusted(self.config_dir / "history")

    @property
    def config_lock(self) -> Path:
        return self.config_dir / "lock"

    def applied_file(self, name: str) -> Path:
        """What the server's shim was last given (its settings, redacted), for `apply` and `status`."""
        return self.server_dir(name) / "applied.json"

    def ensure_config(self) -> None:
        self.ensure()
        for directory in (self.config_dir, self.history):
            private_dir(directory)

    @property
    def gateway_dir(self) -> Path:
        """The project's gateway files: state.json, instance.lock, events.jsonl, gateway.log, tokens.json."""
        return self._trusted(self.root / "gateway")

    def gateway_file(self, filename: str) -> Path:
        return self.gateway_dir / filename

    def ensure_gateway(self) -> None:
        self.ensure()
        private_dir(self.gateway_dir)

    def known_servers(self) -> list[str]:
        """Names that have a state directory, whether or not they are configured."""
        old = {name for name in self.legacy if self.server_dir(name).is_dir()}
        try:
            return sorted(old | {p.name for p in self.servers.iterdir() if p.is_dir()})
        except FileNotFoundError:
            return sorted(old)
        except NotADirectoryError:  # the state dir, or a folder in it, is a file
            raise blocked(self.servers) from None


def _rotation(rest: str) -> bool:
    return rest == "" or (rest.startswith(".") and rest[1:].isdigit())


def runtime_dir() -> Path:
    """Where sockets go when the state path is too long: $XDG_RUNTIME_DIR (the user's own), else the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and _owned_private(runtime):
        return Path(runtime) / "mcpctl"
    import tempfile

    return Path(tempfile.gettempdir()) / f"mcpctl-{os.getuid()}"


def _owned_private(directory: str) -> bool:
    try:
        info = os.stat(directory)
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o077


def find_config(explicit: str | None = None, cwd: Path | None = None) -> Path | None:
    """-f, then $MCPCTL_CONFIG, then ./mcpctl.toml searched upward, then the user config dir."""
    chosen = explicit or os.environ.get(ENV_CONFIG)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            source = "-f/--config" if explicit else f"${ENV_CONFIG}"
            what = "is a directory" if path.is_dir() else "is not a file" if path.exists() else "does not exist"
            raise ConfigError(
                f"config file {path} (from {source}) {what}",
                "give the path of a TOML or JSON config file, or run without it to search ./mcpctl.toml upward",
            )
        return path
    here = (cwd or Path.cwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    user = user_config_dir() / CONFIG_FILENAME
    return user if user.is_file() else None
