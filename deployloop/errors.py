"""One error hierarchy: every expected failure is a DeployloopError with its exit code."""

from __future__ import annotations


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


class TargetUnreachable(DeployloopError):
    """Staging did not answer within its timeout."""

    exit_code = 3


class LockHeld(DeployloopError):
    """Another deployloop instance runs this config."""

    exit_code = 75


class TrackerError(DeployloopError):
    """The issue tracker refused or failed a write after its retries."""
