"""One error hierarchy: every expected failure is a DeployloopError with its exit code."""

from __future__ import annotations

import errno
import sqlite3


class DeployloopError(Exception):
    """An expected failure: shown to the user as one clear message, never a traceback."""

    exit_code = 1


class UsageError(DeployloopError):
    """Bad configuration or command-line usage."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file with one or more problems, each as ``FILE:LINE: message``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class JUnitError(UsageError):
    """A JUnit file that cannot be read: missing, empty, truncated, or not JUnit."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class MachineError(UsageError):
    """The machine refused a write deployloop needs (disk full, read-only, no permission):
    the user's to fix, so one line naming the path and the errno, exit 2, never a crash."""

    def __init__(
        self, path: object, code: int, detail: str, hint: str = "free space or fix permissions"
    ) -> None:
        self.path = str(path)
        self.errno = code
        name = errno.errorcode.get(code, str(code))
        super().__init__(f"{path}: {detail} ({name}); {hint}, then rerun")


class SchemaTooNew(UsageError):
    """``state.db`` was written by a newer deployloop than this one (its ``user_version``)."""


# The errnos of a machine that cannot take a write: expected, not bugs (errno(3)).
MACHINE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
)
# How sqlite3 words the same conditions; its exceptions carry no errno (sqlite.org/rescode.html).
_SQLITE_MACHINE = (
    ("database or disk is full", errno.ENOSPC),
    ("attempt to write a readonly database", errno.EROFS),
    ("unable to open database file", errno.EACCES),
    ("disk I/O error", errno.EIO),
)


# The errnos of a path that cannot become a directory here: a file in the way (ENOTDIR,
# EEXIST), a filesystem that refuses new entries (ENOENT from mkdir under /proc). Expected only
# where deployloop makes its own directories (``not_a_directory``), a bug anywhere else.
_NOT_A_DIRECTORY = frozenset({errno.ENOTDIR, errno.EEXIST, errno.ENOENT})


def not_a_directory(exc: OSError, path: object) -> MachineError | None:
    """``exc``, raised making the directory ``path``, as a MachineError (exit 2, the path and
    errno) when the path cannot be a directory or the machine refuses the write; else None."""
    if exc.errno in _NOT_A_DIRECTORY:
        detail = exc.strerror or str(exc)
        return MachineError(path, exc.errno, detail, "choose a path that can be a directory")
    return machine_error(exc, path)


def machine_error(exc: BaseException, where: object = "state.db") -> MachineError | None:
    """``exc`` as a MachineError when it is a full or read-only disk, else None.

    ``where`` names the path for sqlite3 errors, which carry none of their own.
    """
    if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
        return MachineError(exc.filename or where, exc.errno, exc.strerror or str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        found = (code for words, code in _SQLITE_MACHINE if words in text)
        code = next(found, None)
        return None if code is None else MachineError(where, code, text)
    return None


class TargetUnreachable(DeployloopError):
    """Staging did not answer within its timeout."""

    exit_code = 3


class LockHeld(DeployloopError):
    """Another deployloop instance runs this config."""

    exit_code = 75


class TrackerError(DeployloopError):
    """The issue tracker refused or failed a write after its retries."""


# Exit statuses of ``run`` that are no failed night: every gate green (0), another instance
# already runs this config (75), stopped on purpose by SIGINT or SIGTERM (130, 143; a
# ``systemctl stop`` is SIGTERM). ``run --quiet`` stays silent for them, so cron mails nothing,
# and systemd's SuccessExitStatus lists them; any other status (1, 2, 3, 70) is a failure.
NOT_FAILURES = (0, LockHeld.exit_code, 130, 143)
