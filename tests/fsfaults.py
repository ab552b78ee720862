"""Broken file systems for tests and the soak: a read-only directory and a full disk.

Real ones, not mocks: a small tmpfs mounted read-only or nearly full. Mounting needs root; as
another user a read-only directory is a chmod 555 one (root ignores modes), and a full disk
cannot be made, so the caller skips with the reason given.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NO_MOUNT = "needs root to mount a tmpfs (a full disk cannot be made otherwise)"


class Unavailable(Exception):
    """This fault cannot be made on this machine; ``str()`` says why (a skip reason)."""


def _mount(path: Path, options: str) -> None:
    if os.geteuid() != 0:
        raise Unavailable(NO_MOUNT)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise Unavailable(f"mount failed: {done.stderr.strip()}")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextmanager
def readonly_dir(path: Path) -> Iterator[Path]:
    """``path`` (created empty) that no process can write into, for the block's duration."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    _mount(path, "ro,size=1m")
    try:
        yield path
    finally:
        _unmount(path)


@contextmanager
def full_disk(path: Path, size_kib: int = 256) -> Iterator[Path]:
    """``path`` (created empty) on a tmpfs of ``size_kib`` KiB: writes past that get ENOSPC."""
    path.mkdir(parents=True, exist_ok=True)
    _mount(path, f"size={size_kib}k")
    try:
        yield path
    finally:
        _unmount(path)


def fill(path: Path) -> None:
    """Fill the file system holding ``path`` until a write gets ENOSPC."""
    with open(path / "filler", "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
