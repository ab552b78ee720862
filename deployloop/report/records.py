"""The report's records: plain frozen values, built by ``data.build`` and read by the renderers."""

from __future__ import annotations

from dataclasses import dataclass

from deployloop.logical import pass_rate


@dataclass(frozen=True, slots=True)
class Gate:
    """One verdict line of a phase, split into its parts (``text`` keeps the original)."""

    phase: str
    gate: str
    passed: bool
    measured: str
    threshold: str
    reason: str
    text: str


@dataclass(frozen=True, slots=True)
class PhaseStats:
    """One phase in one iteration: the "full" runs' counts and the gates' judgement."""

    phase: str
    passed: int = 0  # as the gate counts them: flaky tests forgiven, xpassed tests passed
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0  # not judged, like skips
    xpassed: int = 0  # also in ``passed``
    gate_passed: bool | None = None  # None: the phase did not finish in this iteration
    harness_errors: tuple[str, ...] = ()

    @property
    def judged(self) -> int:
        return self.passed + self.failed + self.errors

    @property
    def pass_rate(self) -> float | None:
        """``logical.pass_rate``, the gates' own; None when nothing was judged."""
        return pass_rate(self.passed, self.judged) if self.judged else None

    @property
    def categories(self) -> dict[str, int]:
        """Tests per pytest category (``Outcome`` values), xpassed ones apart from passed."""
        return {
            "passed": self.passed - self.xpassed,
            "failed": self.failed,
            "error": self.errors,
            "skipped": self.skipped,
            "xfailed": self.xfailed,
            "xpassed": self.xpassed,
        }


@dataclass(frozen=True, slots=True)
class IterationInfo:
    n: int
    version: str | None
    started: float
    ended: float | None
    duration_s: float | None
    green: bool | None  # None: still running or cut short
    phases: tuple[PhaseStats, ...]
    gates: tuple[Gate, ...]
    flaky: tuple[str, ...] = ()
    failed_first: tuple[int, int] | None = None  # (passed, total) of the quick retest
    skipped_phases: tuple[str, ...] = ()

    def phase(self, name: str) -> PhaseStats | None:
        return next((p for p in self.phases if p.phase == name), None)


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    fingerprint: str
    message: str
    error_type: str
    phase: str
    tests: tuple[str, ...]
    first_seen_iteration: int | None
    first_seen_version: str | None
    last_seen_iteration: int | None
    last_seen_version: str | None
    status: str  # open | fixed | flaky
    size: int  # how many tests (the list may be cut short)
    issue_number: int | None = None
    fixed_in: str | None = None
    closed_at: str | None = None
    muted_by: int | None = None  # its issue, closed by a person as not planned

    @property
    def shown_status(self) -> str:
        """The status column: "muted by #N", "fixed (fixed in X)", "open", "flaky"."""
        if self.muted_by is not None:
            return f"muted by #{self.muted_by}"
        return self.status + (f" (fixed in {self.fixed_in})" if self.fixed_in else "")


@dataclass(frozen=True, slots=True)
class IssueStep:
    """One thing done to an issue: when (iteration, version) and what."""

    action: str  # create | comment | close | reopen
    iteration: int | None
    version: str | None
    ts: float
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class IssueInfo:
    number: int | None
    title: str
    fingerprint: str
    steps: tuple[IssueStep, ...]

    @property
    def opened(self) -> IssueStep | None:
        return next((s for s in self.steps if s.action == "create"), None)

    @property
    def closed(self) -> IssueStep | None:
        """The close that still stands (none when it was reopened afterwards)."""
        last = next((s for s in reversed(self.steps) if s.action in ("close", "reopen")), None)
        return last if last is not None and last.action == "close" else None

    @property
    def updates(self) -> int:
        return sum(1 for s in self.steps if s.action == "comment")


@dataclass(frozen=True, slots=True)
class FlakyTest:
    test: str
    phase: str
    iterations: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SlowTest:
    test: str
    phase: str
    suite: str
    duration_s: float
    outcome: str


@dataclass(frozen=True, slots=True)
class RedeployWait:
    after_iteration: int | None
    version: str
    after_s: float
    ts: float


@dataclass(frozen=True, slots=True)
class RedeployProblem:
    """A redeploy trigger that failed or a wait that timed out, as session.md words it."""

    after_iteration: int | None
    text: str
    ts: float


@dataclass(frozen=True, slots=True)
class Budget:
    started: float
    deadline: float | None
    ended: float | None
    iterations_used: int
    max_iterations: int
    status: str
    exit_code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class FailingPhase:
    """A phase whose gates fail in the last iteration, failing since ``since_iteration``."""

    phase: str
    since_iteration: int
    since_version: str | None
    gates: tuple[Gate, ...]


@dataclass(frozen=True, slots=True)
class Headline:
    state: str  # green | failing | running | empty
    text: str
    version: str | None
    iteration: int | None
    failing: tuple[FailingPhase, ...] = ()
    open_clusters: tuple[ClusterInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification the night sent (or could not): ``via`` with its secrets hidden."""

    ts: float
    notice: str
    via: str
    ok: bool
    title: str


@dataclass(frozen=True, slots=True)
class VersionStep:
    """One version the night ran on: when it first appeared (seen in a wait, or first tested),
    when it settled (None: never waited for), and the iterations that ran on it."""

    version: str
    appeared: float
    settled: float | None
    iterations: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CauseLine:
    """One cause's line across versions: "failing on A; fixed in B; regressed in C", or
    "... not verified: no deploy came"."""

    fingerprint: str
    phase: str
    message: str
    line: str


@dataclass(frozen=True, slots=True)
class ReportData:
    session: str
    name: str
    directory: str
    generated: float
    headline: Headline
    phases: tuple[str, ...]
    iterations: tuple[IterationInfo, ...]
    clusters: tuple[ClusterInfo, ...]
    issues: tuple[IssueInfo, ...]
    flaky: tuple[FlakyTest, ...]
    slowest: tuple[SlowTest, ...]
    waits: tuple[RedeployWait, ...]
    budget: Budget
    redeploy_problems: tuple[RedeployProblem, ...] = ()
    notifications: tuple[Notification, ...] = ()
    versions: tuple[VersionStep, ...] = ()
    causes: tuple[CauseLine, ...] = ()
    not_started: tuple[str, ...] = ()  # "phase P skipped: needs ~25 min, 12 min left"

    @property
    def last(self) -> IterationInfo | None:
        return self.iterations[-1] if self.iterations else None
