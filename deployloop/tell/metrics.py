"""``[metrics] textfile``: the night's numbers for node_exporter's textfile collector.

After every iteration the file is rewritten atomically (prometheus-client's
``write_to_textfile``: a temporary file, then ``os.replace``). Names follow the Prometheus
naming guide (https://prometheus.io/docs/practices/naming/): ``deployloop_`` prefix, base units
(seconds, ratios 0..1), ``_total`` counters; every series carries ``session`` (the config's
``[session] name``):

- ``deployloop_iteration``, ``deployloop_iterations_left``, ``deployloop_green`` (1/0);
- per phase of the last iteration: ``deployloop_phase_pass_ratio``, ``deployloop_phase_p95_seconds``
  (the gates' own numbers: ``logical`` tally, flaky tests forgiven; tests' timings),
  ``deployloop_phase_passed`` (1/0), and per gate ``deployloop_gate_passed{phase,gate}``;
- ``deployloop_open_causes``, ``deployloop_issues_filed_total``, ``deployloop_issues_closed_total``;
- ``deployloop_seconds_since_last_green`` (absent until an iteration of the session was green),
  ``deployloop_budget_left_seconds`` (absent without a deadline),
  ``deployloop_redeploy_wait_seconds`` (the last wait for a new version).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from deployloop.events import DryRun, Event, IssueDone, IterationEnd, MetricsFailed, Reporter
from deployloop.logical import tally
from deployloop.state import Store
from deployloop.summary import percentile, timing_of
from deployloop.tell.night import Night

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

Sample = tuple[str, str, dict[str, str], float]  # kind (gauge/counter), name, labels, value


class Metrics:
    """The metrics teller: reads the night and the state, writes the textfile."""

    def __init__(
        self,
        path: Path,
        name: str,
        store: Store,
        reporter: Reporter,
        clock: Callable[[], float],
        dry_run: bool = False,
    ) -> None:
        self.path = path
        self.name = name
        self.store = store
        self.reporter = reporter
        self.clock = clock
        self.dry_run = dry_run
        self._said = False

    def on(self, event: Event, night: Night) -> None:
        if isinstance(event, IterationEnd):
            self.write(night)

    def close(self, night: Night) -> None:
        """The file stays as the last iteration left it."""

    def write(self, night: Night) -> None:
        """Rewrite the textfile; a failure is reported (``MetricsFailed``), never raised.

        A dry run writes nothing (node_exporter would publish a night that did not happen); it
        says once what it would write."""
        if self.dry_run:
            if not self._said:
                detail = f"would write metrics to {self.path} after every iteration"
                self.reporter.emit(DryRun(detail=detail))
                self._said = True
            return
        from prometheus_client import CollectorRegistry, write_to_textfile

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.name, list(self.samples(night))))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(self.path), registry)
        except OSError as exc:
            self.reporter.emit(MetricsFailed(path=str(self.path), error=str(exc)))

    def samples(self, night: Night) -> Iterator[Sample]:
        """Every sample of the file, from ``night`` and the state store."""
        yield from self._progress(night)
        yield from self._phases(night)
        yield from self._causes(night)

    def _progress(self, night: Night) -> Iterator[Sample]:
        now = self.clock()
        yield "gauge", "deployloop_iteration", {}, night.iteration
        yield (
            "gauge",
            "deployloop_iterations_left",
            {},
            max(0, night.max_iterations - night.iteration),
        )
        yield (
            "gauge",
            "deployloop_green",
            {},
            float(bool(night.phases) and all(p.passed for p in night.phases)),
        )
        greens = [row["ended"] for row in self.store.iterations(night.session) if row["green"]]
        if greens and greens[-1] is not None:
            yield "gauge", "deployloop_seconds_since_last_green", {}, max(0.0, now - greens[-1])
        if night.deadline is not None:
            yield "gauge", "deployloop_budget_left_seconds", {}, max(0.0, night.deadline - now)
        if night.last_wait_s is not None:
            yield "gauge", "deployloop_redeploy_wait_seconds", {}, night.last_wait_s

    def _phases(self, night: Night) -> Iterator[Sample]:
        runs = [run for _, run in self.store.runs(night.session, night.iteration)]
        for end in night.phases:
            cases = [c for run in runs if run.phase == end.phase for c in run.cases]
            labels = {"phase": end.phase}
            counts = tally(cases, forgiven=end.flaky)
            if counts.judged:
                yield "gauge", "deployloop_phase_pass_ratio", labels, counts.rate()
            timings = [t for t in map(timing_of, cases) if t is not None]
            if timings:
                yield "gauge", "deployloop_phase_p95_seconds", labels, percentile(timings, 95)
            yield "gauge", "deployloop_phase_passed", labels, float(end.passed)
            for verdict in end.gates:
                gate = {**labels, "gate": verdict.gate}
                yield "gauge", "deployloop_gate_passed", gate, float(verdict.passed)

    def _causes(self, night: Night) -> Iterator[Sample]:
        clusters = self.store.clusters(night.session).values()
        yield (
            "gauge",
            "deployloop_open_causes",
            {},
            sum(c.get("status") == "open" for c in clusters),
        )
        done = [e.action for _, e in self.store.story(night.session, IssueDone) if not e.dry_run]
        yield "counter", "deployloop_issues_filed", {}, done.count("created")
        yield "counter", "deployloop_issues_closed", {}, done.count("closed")


HELP = {
    "deployloop_iteration": "The iteration last finished.",
    "deployloop_iterations_left": "Iterations the session may still run (max_iterations).",
    "deployloop_green": "1 when every gate of the last iteration passed.",
    "deployloop_seconds_since_last_green": "Seconds since an iteration of the session was green.",
    "deployloop_budget_left_seconds": "Seconds until the session's deadline.",
    "deployloop_redeploy_wait_seconds": "How long the last wait for a new version took.",
    "deployloop_phase_pass_ratio": "Pass rate of the phase's logical tests (0..1), as gated.",
    "deployloop_phase_p95_seconds": "95th percentile of the phase's test durations.",
    "deployloop_phase_passed": "1 when every gate of the phase passed.",
    "deployloop_gate_passed": "1 when the gate passed.",
    "deployloop_open_causes": "Failure causes (clusters) still open.",
    "deployloop_issues_filed": "Issues the session created.",
    "deployloop_issues_closed": "Issues the session closed as verified fixed.",
}


class _Collector:
    """Hands prometheus-client fixed samples, one family per name, each labelled ``session``."""

    def __init__(self, session: str, samples: list[Sample]) -> None:
        self.session = session
        self.samples = samples

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for kind, name, labels, value in self.samples:
            family = families.get(name)
            if family is None:
                make = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
                family = families[name] = make(name, HELP[name], labels=["session", *labels])
            family.add_metric([self.session, *labels.values()], value)
        yield from families.values()
