"""The crash log: what a bug report needs, written wherever the machine still allows.

Used by the one top-level handler in ``cli``, so it must never raise: a crash on a read-only or
full disk still ends with exit 70 and the traceback somewhere a person can find it.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from deployloop import __version__

CRASH_LOG = "crash.log"


def crash_text(traceback_text: str, argv: Iterable[str]) -> str:
    """The log's content: version, Python, platform, command line, then the traceback."""
    return (
        f"deployloop {__version__} crashed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n"
        f"python {platform.python_version()} on {platform.platform()}\n"
        f"command: {' '.join(argv)}\n\n{traceback_text}"
    )


def write_crash_log(text: str, directories: Iterable[Path]) -> Path | None:
    """Write ``text`` as ``crash.log`` in the first of ``directories`` that takes it.

    An earlier ``crash.log`` there is kept as ``crash-<its time>.log``. Returns the path
    written, or None when no directory took it (the caller prints the text to stderr then).
    Never raises.
    """
    for directory in directories:
        try:
            return _write_in(directory, text)
        except Exception:  # the crash handler must survive any failure here
            continue
    return None


def _write_in(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CRASH_LOG
    if path.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
        kept, n = directory / f"crash-{stamp}.log", 1
        while kept.exists():
            n += 1
            kept = directory / f"crash-{stamp}-{n}.log"
        os.replace(path, kept)
    path.write_text(text, encoding="utf-8")
    return path


def crash_directories(config: Path | None) -> list[Path]:
    """Where a crash log may go: the config's logs_dir, then the state dir, never raising.

    Falls back to ``./logs`` when no config can be loaded (the crash may be in loading it).
    """
    from deployloop.state import state_dir

    logs_dir: str | Path = "logs"
    try:
        from deployloop import config as config_module

        logs_dir = config_module.load(config_module.find_config(config)).session.logs_dir
    except Exception:  # a broken config must not hide the crash itself
        pass
    try:
        return [Path(logs_dir), state_dir(logs_dir)]
    except Exception:
        return [Path(logs_dir)]


def report_to_stderr(text: str) -> None:
    """The last resort: the whole crash text on stderr, ignoring a closed stream."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except Exception:  # nothing is left to report to
        pass
