"""Signals and children: names for exit signals, and adopting orphaned descendants (Linux)."""

from __future__ import annotations

import signal
import sys


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def become_subreaper() -> bool:
    """On Linux, adopt orphaned descendants (they are re-parented to us, and we reap them)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_child_subreaper = 36
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
