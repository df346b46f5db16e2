"""mcpctl: a process manager for MCP servers.

`from mcpctl import Manager` is the Python API (see the README's "Python API"). The names below load on
first use (PEP 562), so `import mcpctl` stays as cheap as the CLI and the shim need it to be.
"""

from __future__ import annotations

from mcpctl.hints import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mcpctl.api import Manager
    from mcpctl.errors import (
        BusyError,
        ConfigError,
        ConnectionLostError,
        EnvError,
        ErrorType,
        MCPCtlError,
        NotRunningError,
        StartError,
        StateDirError,
        TimedOutError,
        ToolError,
        UnhealthyError,
        UnknownServerError,
        UsageError,
    )

__all__ = [
    "BusyError",
    "ConfigError",
    "ConnectionLostError",
    "EnvError",
    "ErrorType",
    "MCPCtlError",
    "Manager",
    "NotRunningError",
    "StartError",
    "StateDirError",
    "TimedOutError",
    "ToolError",
    "UnhealthyError",
    "UnknownServerError",
    "UsageError",
    "__version__",
]
_ERRORS = frozenset(__all__) - {"Manager", "__version__"}


def __getattr__(name: str) -> Any:
    if name == "Manager":
        from mcpctl.api import Manager

        return Manager
    if name in _ERRORS:
        from mcpctl import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'mcpctl' has no attribute {name!r}")
