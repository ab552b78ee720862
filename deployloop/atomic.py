"""Files replaced in one step: a reader, or a crash, sees the old content or the new, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def temp_beside(path: Path, text: str, *, mode: int = 0o644, errors: str = "strict") -> Path:
    """``text`` written and synced to a new temporary file in ``path``'s folder."""
    data = text.encode("utf-8", errors)
    with _synced_temp(path, mode) as (handle, temp):
        handle.write(data)
    return temp


def write_atomic(path: Path, text: str, *, mode: int = 0o644, errors: str = "strict") -> Path:
    """Replace ``path`` with ``text`` through a synced temporary file and ``os.replace``."""
    data = text.encode("utf-8", errors)  # before the temporary: a failure leaves none behind
    with replacing(path, mode=mode) as handle:
        handle.write(data)
    return path


@contextlib.contextmanager
def replacing(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary handle on a new temporary file in ``path``'s folder (made if missing), for a
    writer that streams: when the block ends, the file is synced, given ``mode`` and put in
    ``path``'s place by ``os.replace``. When the block raises, the temporary is removed, ``path``
    is left as it was, and the exception goes on. Raises ``OSError`` when the folder, the
    temporary or the replacement cannot be made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _synced_temp(path, mode) as (handle, temp):
        yield handle
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _synced_temp(path: Path, mode: int) -> Iterator[tuple[BinaryIO, Path]]:
    """A binary handle on a new, hidden temporary file beside ``path``, and its path: when the
    block ends, the file is synced and given ``mode``; when it raises, the file is removed."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, temp
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)  # mkstemp makes every file private; say what this one is
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
