"""The dask executor: each job a task on an existing Dask distributed cluster
(https://distributed.dask.org), run by ``remote.run_task`` on a worker.

Faults on a cluster are harness errors, never passes: a task whose workers died (Dask's
``KilledWorker``, or ``remote``'s own one-retry limit), a scheduler lost mid-run, a cancelled
task, a task that failed on the cluster for a reason of its own all give a SuiteRun with no
test in it and the reason in words. ``health`` tells the loop
whether the scheduler answers, so a lost scheduler is waited for like an unhealthy target.
Live progress: workers send their suites' progress lines on the session's event topic, and
``relay.ProgressRelay`` writes them to the jobs' progress files here, as a local suite's grow.
A stop sets the session's named ``distributed.Event``: every running task stops its suite's
process group on its worker, and ``run`` waits (bounded) for them to say so.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployloop.config_schema import ExecutorConfig
from deployloop.errors import TargetUnreachable
from deployloop.executors.relay import ProgressRelay
from deployloop.executors.remote import TaskResult, TaskSpec, run_task
from deployloop.models import ProbeResult, RunEnd, SuiteRun
from deployloop.process import GRACE_S
from deployloop.redact import Redactor
from deployloop.runner import SuiteJob, progress_path
from deployloop.scrub import ScrubbingWriter, scrubbed_case

CONNECT_S = 10.0  # for the scheduler to answer at start
POLL_S = 0.1  # how often a waiting job checks the stop
STOP_WAIT_S = GRACE_S + 10.0  # for tasks to stop their groups after a stop
LOST_S = 2.0  # for the client to notice a lost scheduler after a task failed


@dataclass
class DaskExecutor:
    """Jobs as tasks on the cluster behind ``client`` (a ``distributed.Client``)."""

    client: Any
    scheduler: str
    stop: threading.Event
    redactor: Redactor
    secrets: tuple[str, ...]
    stop_name: str
    topic: str
    relay: ProgressRelay

    @classmethod
    def connect(
        cls,
        config: ExecutorConfig,
        stop: threading.Event,
        redactor: Redactor,
        secrets: Iterable[str | None],
    ) -> DaskExecutor:
        """A client of ``config.scheduler`` (TLS with ``ca``/``cert``/``key``).
        Raises TargetUnreachable (exit 3) when the scheduler does not answer in CONNECT_S."""
        from distributed import Client, Event, Security

        assert config.scheduler is not None  # ExecutorConfig checks kind = "dask" has one
        security = None
        if config.ca is not None:
            security = Security(
                tls_ca_file=config.ca,
                tls_client_cert=config.cert,
                tls_client_key=config.key,
                require_encryption=True,
            )
        try:
            client = Client(
                config.scheduler, security=security, timeout=CONNECT_S, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise TargetUnreachable(
                f"dask scheduler {config.scheduler} unreachable: {exc or type(exc).__name__}"
            ) from exc
        session = uuid.uuid4().hex
        name, topic = f"deployloop-stop-{session}", f"deployloop-progress-{session}"
        Event(name, client=client).clear()
        relay = ProgressRelay(redactor)
        client.subscribe_topic(topic, relay.receive)
        kept = tuple(s for s in secrets if s)
        return cls(client, config.scheduler, stop, redactor, kept, name, topic, relay)

    def run(self, job: Any) -> SuiteRun:
        """Run ``job`` (a ``runner.SuiteJob``) as one task; its JUnit XML and log tail are
        written, scrubbed, at the job's own paths. Never raises for the cluster's faults;
        raises OSError, as ``run_suite`` does, when the files under logs/ cannot be written."""
        from distributed import Variable

        starts = f"deployloop-starts-{uuid.uuid4().hex}"
        self.relay.open(starts, progress_path(job))  # OSError: logs/ unwritable, as run_suite's
        try:
            Variable(starts, client=self.client).set([])
            names = (self.stop_name, starts, self.topic)
            spec = TaskSpec.for_worker(job, self.secrets, names, self.redactor.id_key)
            future = self.client.submit(run_task, spec, key=starts, pure=False, retries=0)
            result = self._wait(future)
        except Exception as exc:  # every way a cluster fails is a harness error, never a pass
            return _failed(job, self._words(exc))
        finally:
            self.relay.close(starts)
        return self._settled(job, result)

    def _wait(self, future: Any) -> TaskResult:
        """The task's result; after a stop, the cluster is told once and waited for (bounded).
        Raises ConnectionError once the client lost the scheduler (its futures would wait on)."""
        from distributed import Event

        # Polling: the Future offers no wait a stop can cut short, and distributed.wait looks
        # for a default client, which ours is not.
        given_up_at = None  # once stopped: when the cluster's tasks have had long enough
        while not future.done():
            if self.client.status != "running":  # reconnecting or closed: the scheduler is gone
                raise ConnectionError(f"client {self.client.status}")
            if self.stop.is_set() and given_up_at is None:
                Event(self.stop_name, client=self.client).set()
                given_up_at = time.monotonic() + STOP_WAIT_S
            if given_up_at is not None and time.monotonic() >= given_up_at:
                break
            time.sleep(POLL_S)
        if not future.done():
            future.cancel()
        return future.result(timeout=1)  # type: ignore[no-any-return]

    def _words(self, exc: BaseException) -> str:
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            return f"dask workers kept dying running it: {exc}"
        if self.stop.is_set():
            return "interrupted; the cluster's task was cancelled"
        what = f"{type(exc).__name__}: {exc}"
        if self._scheduler_gone():
            return f"dask scheduler {self.scheduler} lost mid-run: {what}"
        return f"dask task failed on the cluster ({self.scheduler}): {what}"

    def _scheduler_gone(self) -> bool:
        """Whether the client has lost its scheduler, given ``LOST_S`` to notice: a task's
        error can come before the client's status changes."""
        deadline = time.monotonic() + LOST_S
        while self.client.status == "running":
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    def _settled(self, job: Any, result: TaskResult) -> SuiteRun:
        """The worker's run at this machine's paths, its files written here, scrubbed again
        with this machine's secrets (the worker's environment may lack some)."""
        job.log_path.parent.mkdir(parents=True, exist_ok=True)
        note = b""
        if result.lost:
            note = (
                f"[deployloop] worker {', '.join(result.lost)} lost mid-run; "
                f"retried on {result.worker}\n"
            ).encode()
        _write_scrubbed(job.log_path, note + result.log_tail, self.redactor, xml=False)
        junit = None
        if result.junit is not None:
            _write_scrubbed(job.junit_path, result.junit, self.redactor, xml=True)
            junit = str(job.junit_path)
        run = result.run
        return SuiteRun(
            phase=run.phase,
            suite=run.suite,
            cases=tuple(scrubbed_case(c, self.redactor) for c in run.cases),
            wall_s=run.wall_s,
            exit_code=run.exit_code,
            harness_error=run.harness_error and self.redactor.redact(run.harness_error),
            version=run.version,
            junit_path=junit,
            log_path=str(job.log_path),
            expected_tests=run.expected_tests,
            ended=run.ended,
            collected=run.collected,
            repairs=tuple(self.redactor.redact(note) for note in run.repairs),
        )

    def health(self) -> ProbeResult | None:
        """Whether the client holds its scheduler connection now (a lost scheduler is waited
        for like staging). The client's own state: no call that could hang on a dead link."""
        status = str(self.client.status)
        ok = status == "running"
        detail = self.scheduler if ok else f"{self.scheduler}: scheduler connection {status}"
        return ProbeResult("dask scheduler", "dask", ok, detail)

    def close(self) -> None:
        """Let go of the scheduler connection."""
        self.client.close()


def _write_scrubbed(path: Path, data: bytes, redactor: Redactor, *, xml: bool) -> None:
    """``data`` written to ``path`` (replacing it) through the same scrubbing writer as a
    local suite's files."""
    path.unlink(missing_ok=True)
    with ScrubbingWriter(path, redactor, xml=xml) as writer:
        writer.write(data)


def _failed(job: SuiteJob, reason: str) -> SuiteRun:
    """A harness error for a job the cluster could not run to its end: no test counted."""
    ended = RunEnd.INTERRUPTED if reason.startswith("interrupted") else RunEnd.RUNNER_ERROR
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log_path, "a", encoding="utf-8") as log:
        log.write(f"[deployloop] {reason}\n")
    return job.not_run(reason, ended, job.log_path)
