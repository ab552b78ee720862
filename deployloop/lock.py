"""One instance per config: an fcntl lock the kernel releases when the holder dies.

fcntl is used directly (as pre-commit does) rather than filelock because the lock file must
also carry the holder's pid for the "already running" message, and filelock truncates it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType

from deployloop.errors import LockHeld, UsageError

# Not $TMPDIR and not the state dir: a shell, cron and systemd (with whatever
# DEPLOYLOOP_STATE_DIR) must all meet on the same lock for one config.
LOCK_ROOT = Path("/tmp")


def lock_path(config_key: str) -> Path:
    """The lock of one config (its resolved path and session name), per user, under /tmp."""
    digest = hashlib.sha256(config_key.encode()).hexdigest()[:16]
    return LOCK_ROOT / f"deployloop-{os.getuid()}" / f"run-{digest}.lock"


class InstanceLock:
    """Held for the life of a ``run``; a second holder gets LockHeld (exit 75) at once."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def __enter__(self) -> InstanceLock:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path.parent.stat().st_uid != os.getuid():  # another user's: could fake a lock
            raise UsageError(f"{self.path.parent} belongs to another user; remove it")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(
                f"another deployloop run (pid {holder}) is running {self.what}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
