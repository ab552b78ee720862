"""Files replaced in one step: a reader, or a crash, sees the old content or the new, never half."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_beside(path: Path, text: str, *, mode: int = 0o644, errors: str = "strict") -> Path:
    """``text`` written and synced to a new temporary file in ``path``'s folder."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)  # mkstemp makes every file private; say what this one is
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return Path(temp)


def write_atomic(path: Path, text: str, *, mode: int = 0o644, errors: str = "strict") -> Path:
    """Replace ``path`` with ``text`` through a synced temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_beside(path, text, mode=mode, errors=errors)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
