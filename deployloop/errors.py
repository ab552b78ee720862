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


# Exit statuses of ``run`` that are no failed night: every gate green (0), another instance
# already runs this config (75), stopped on purpose by SIGINT or SIGTERM (130, 143; a
# ``systemctl stop`` is SIGTERM). ``run --quiet`` stays silent for them, so cron mails nothing,
# and systemd's SuccessExitStatus lists them; any other status (1, 2, 3, 70) is a failure.
NOT_FAILURES = (0, LockHeld.exit_code, 130, 143)
