"""`mcpctl client restore`: a backup made by `client setup` written back, byte for byte."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mcpctl.clients import store
from mcpctl.errors import StateDirError, UsageError
from mcpctl.i18n import N_
from mcpctl.lean import Record, dataclass
from mcpctl.paths import Paths

# A backup that cannot be read (English: --json carries it); KNOWN lets the CLI show it translated.
UNREADABLE, PICK_ANOTHER = N_("backup {copy}: cannot read: {reason}"), N_("pick another with --backup")
KNOWN = (UNREADABLE,)


@dataclass(frozen=True)
class Restored(Record):
    """The files a backup put back."""

    backup: store.Backup
    files: tuple[Path, ...]

    def to_json(self) -> dict[str, Any]:
        return {"client": self.backup.client, "backup": self.backup.stamp, "files": [str(f) for f in self.files]}


def restore(paths: Paths, backup: store.Backup) -> Restored:
    """Each file of the backup as it was, where it is still the user's own (the trust rules judge it,
    refusing one another user planted or took since: UntrustedFile, exit 2); the caller holds the config
    lock."""
    from mcpctl.config.document import linked, write_file
    from mcpctl.config.trust import check_client_file

    restored = []
    for listed, copy in backup.files:
        if os.path.lexists(listed):  # judged as setup judged it: a link or file planted since is not written
            check_client_file(listed)
        path = linked(listed)  # a symlinked file is written through its link, which stays
        try:
            content = copy.read_bytes()
        except OSError as exc:
            raise UsageError(UNREADABLE.format(copy=copy, reason=exc.strerror), PICK_ANOTHER) from exc
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        write_file(path, content)  # atomic; private first, then the file's own mode
        try:
            os.chmod(path, mode)
        except OSError as exc:
            raise StateDirError(f"cannot set the mode of {path}: {exc.strerror}") from exc
        restored.append(listed)
    store.forget_setup(paths, backup.client, [str(path) for path in restored])
    return Restored(backup, tuple(restored))
