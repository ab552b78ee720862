"""Where suites and shards run, behind one interface (``[executor]``, issue 21).

``local`` (the default) runs each job as a subprocess on this machine; ``dask`` submits it as a
task to an existing Dask distributed cluster (``dask_cluster``), imported only when configured
so start-up stays fast. Either way a job is the same ``runner.run_suite`` call: own process
group, timeout, staged shutdown, scrubbed output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from deployloop.config_schema import ExecutorConfig
from deployloop.models import ProbeResult, SuiteRun
from deployloop.redact import Redactor
from deployloop.runner import SuiteJob, run_suite


class Executor(Protocol):
    """Runs one job to its SuiteRun (never raising for a broken harness or a lost worker), says
    whether it can run jobs now (``health``: None when nothing can fail), and lets go of what
    it holds (``close``)."""

    def run(self, job: SuiteJob) -> SuiteRun: ...

    def health(self) -> ProbeResult | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LocalExecutor:
    """Jobs as subprocesses of this process (``runner.run_suite``)."""

    stop: threading.Event
    force: threading.Event | None
    redactor: Redactor | None

    def run(self, job: SuiteJob) -> SuiteRun:
        """``runner.run_suite`` with the session's stop, force and redactor."""
        return run_suite(job, self.stop, redactor=self.redactor, force=self.force)

    def health(self) -> ProbeResult | None:
        """This machine is always there."""
        return None

    def close(self) -> None:
        """Nothing is held."""


def make_executor(
    config: ExecutorConfig,
    stop: threading.Event,
    force: threading.Event | None,
    redactor: Redactor,
    secrets: Iterable[str | None],
) -> Executor:
    """The configured executor. ``secrets`` are what workers mask besides their own
    environment's. Raises TargetUnreachable (exit 3) when the dask scheduler does not answer."""
    if config.kind == "local":
        return LocalExecutor(stop, force, redactor)
    from deployloop.executors.dask_cluster import DaskExecutor

    return DaskExecutor.connect(config, stop, redactor, secrets)
