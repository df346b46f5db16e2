"""The command line. Importing a command module registers its commands on `app`; the order of these
imports is the order of `mcpctl --help`."""

# isort: off
from mcpctl.cli.app import app, main
from mcpctl.cli import lifecycle, observe, env, config, doctor, init, logs, session, forget, client  # noqa: F401 - registration
from mcpctl.cli import run, export, service, gateway, token  # noqa: F401 - registration
# isort: on

__all__ = ["app", "main"]
