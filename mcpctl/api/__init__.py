"""The Python API for applications: `Manager` (which `import mcpctl` re-exports, loaded on first use)."""

from mcpctl.api.manager import Manager

__all__ = ["Manager"]
