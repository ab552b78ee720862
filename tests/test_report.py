"""The morning report: a real three-iteration night through the CLI, then its markdown and HTML."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from deployloop import report
from deployloop.events import (
    IssueDone,
    IterationStart,
    Journal,
    PhaseEnd,
    Reporter,
    SessionEnd,
    read_journal,
)
from deployloop.models import CaseResult, Outcome, SuiteRun, Verdict
from deployloop.redact import Redactor
from deployloop.report.records import IterationInfo, PhaseStats
from deployloop.state import SessionRow, Store
from deployloop.statesinks import StoryRecorder
from tests.helpers import cli, config_text, phase_block, python_pytest, suite_block, write_tests

# One worker runs the whole module under pytest-xdist: its module-scoped fixture is costly.
pytestmark = pytest.mark.xdist_group(__name__)

PHASES = ("infrastructure", "business")
SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # a GitHub token shape
VERSIONS = ("rev-1", "rev-2", "rev-3")


@dataclass(frozen=True)
class Night:
    root: Path
    state: Path
    session: Path  # the session's log directory
    env: dict[str, str]


STAGING = """
    from pathlib import Path

    def rev():
        return int(Path(__file__).parent.parent.joinpath("version.txt").read_text().split("-")[1])
"""
INFRA = """
    from staging import rev

    def test_health():
        pass

    def test_database():
        if rev() < 2:
            raise ConnectionError("database refused connection on 10.0.0.7:5432")
"""
JOURNEYS = """
    from staging import rev

    def test_login():
        pass

    def test_checkout():
        assert rev() >= 3, "cart total <script>alert('x')</script> | was 0"
"""
# The redeploy trigger: the next revision goes live (the version command reads this file).
BUMP = """
    from pathlib import Path

    path = Path(__file__).parent / "version.txt"
    path.write_text(f"rev-{int(path.read_text().split('-')[1]) + 1}\\n")
"""


def _project(root: Path) -> Path:
    """rev-1: one failure per phase; rev-2: business still fails; rev-3: green."""
    (root / "version.txt").write_text("rev-1\n")
    e2e = root / "e2e"
    write_tests(e2e, "staging.py", STAGING)
    write_tests(e2e, "test_infra.py", INFRA)
    write_tests(e2e, "test_journeys.py", JOURNEYS)
    write_tests(root, "bump.py", BUMP)
    suites = [
        suite_block("p1-critical", python_pytest(str(e2e / "test_infra.py")), cwd=str(e2e)),
        suite_block("journeys", python_pytest(str(e2e / "test_journeys.py")), cwd=str(e2e)),
    ]
    text = config_text(
        *(phase_block(name, suite) for name, suite in zip(PHASES, suites, strict=True)),
        session='interval = "0.1s"\nmax_iterations = 5\n',
        extra=f'[target.version]\ncommand = "cat {root / "version.txt"}"\n\n'
        "[retest]\nrerun_failed = false\n\n"
        f'[redeploy]\ntrigger = "{sys.executable} {root / "bump.py"}"\n'
        'poll = "0.1s"\nsettle = "0s"\n',
    )
    config = root / "deployloop.toml"
    config.write_text(text)
    return config


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    """One real night, shared by the tests that read its report: it takes a few seconds."""
    root = tmp_path_factory.mktemp("night")
    config = _project(root)
    env = {"DEPLOYLOOP_STATE_DIR": str(root / "state"), "DEPLOYLOOP_CONFIG": str(config)}
    done = cli("run", "-c", str(config), cwd=root, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    (session,) = [p for p in (root / "logs").iterdir() if (p / "session.md").exists()]
    return Night(root, root / "state", session, env)


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def _html(night: Night, tmp_path: Path) -> str:
    out = tmp_path / "out.html"
    done = cli("report", "--format", "html", "-o", str(out), cwd=night.root, env=night.env)
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8")


# the real night ------------------------------------------------------------------------------
def test_html_chart_has_one_point_per_iteration_per_phase(night: Night, tmp_path: Path) -> None:
    """Three iterations × two phases: six points, two lines, the phases in the legend."""
    page = _parse(_html(night, tmp_path))
    points = [(a["data-phase"], a["data-iteration"]) for t, a in page.tags if t == "circle"]
    assert Counter(points) == Counter((p, str(n)) for p in PHASES for n in (1, 2, 3))
    assert sum(1 for t, _ in page.tags if t == "polyline") == 2
    legend = "".join(page.text)
    assert all(phase in legend for phase in PHASES)


def test_html_names_versions_and_verdict(night: Night, tmp_path: Path) -> None:
    """The versions label the x axis, the verdict says green on rev-3, the budget is counted."""
    html = _html(night, tmp_path)
    labels = [t for t, a in _parse(html).tags if t == "text" and a.get("class") == "xlabel"]
    assert len(labels) == 3
    assert all(f">{v}</text>" in html for v in VERSIONS)
    assert "every gate passed in iteration 3 on version rev-3" in html
    assert "3 of at most 5" in html and 'class="verdict green"' in html


def test_html_is_self_contained_and_escaped(night: Night, tmp_path: Path) -> None:
    """No script, no external fetch, and test output's markup shows as text."""
    html = _html(night, tmp_path)
    assert "<script" not in html and "&lt;script&gt;alert(" in html
    for fetch in ("<link", " src=", "@import", "url("):
        assert fetch not in html
    assert html.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0
    assert '<meta name="viewport"' in html and 'class="scroll"' in html


def test_markdown_starts_with_the_verdict(night: Night) -> None:
    """``report`` prints markdown whose first line is the verdict; the timeline lists versions."""
    done = cli("report", cwd=night.root, env=night.env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "# ✅ GREEN — every gate passed in iteration 3 on version rev-3"
    rows = [line for line in lines if line.startswith("| ") and "`rev-" in line]
    assert [r.split("|")[1].strip() for r in rows[:3]] == ["1", "2", "3"]
    # Escaped in markdown too; the title is shown as posted, its tag defanged (U+200B).
    assert "cart total \\<\u200bscript\\>" in done.stdout


def test_report_names_issues_and_where_they_were_verified(night: Night, tmp_path: Path) -> None:
    """Each filed issue appears with its opening iteration and the version that verified it."""
    journal = read_journal(night.session / "events.jsonl")
    issues = [e for e in journal if isinstance(e, IssueDone)]
    if not issues:  # SKIPPED ONLY when the run filed no issue (tracker filing not wired in)
        pytest.skip("the run produced no issue events")
    numbers = sorted({e.number for e in issues if e.number is not None})
    assert numbers == [1, 2]
    html = _html(night, tmp_path)
    assert "closed — verified fixed in rev-2" in html  # the database cause, fixed by rev-2
    assert "closed — verified fixed in rev-3" in html  # checkout, fixed by rev-3
    data = _build(night)
    assert [(i.number, i.opened and i.opened.version) for i in data.issues] == [
        (1, "rev-1"),
        (2, "rev-1"),
    ]


def test_report_cli_writes_files(night: Night, tmp_path: Path) -> None:
    """``-o`` writes markdown there; html without ``-o`` lands next to session.md."""
    out = tmp_path / "morning.md"
    done = cli("report", "-o", str(out), cwd=night.root, env=night.env)
    assert done.returncode == 0 and out.read_text().startswith("# ✅ GREEN")
    done = cli("report", "--format", "html", cwd=night.root, env=night.env)
    assert done.returncode == 0
    assert done.stdout.strip().endswith(str(night.session / "report.html"))
    assert (night.session / "report.html").read_text().startswith("<!doctype html>")


def test_report_cli_usage_errors(night: Night, tmp_path: Path) -> None:
    """An unknown format, an unknown session, or no session at all: exit 2 with one line."""
    done = cli("report", "--format", "pdf", cwd=night.root, env=night.env)
    assert done.returncode == 2 and "md or html" in done.stderr
    done = cli("report", "nope", cwd=night.root, env=night.env)
    assert done.returncode == 2 and "no session 'nope' found" in done.stderr
    done = cli("report", cwd=tmp_path)
    assert done.returncode == 2 and "no session found" in done.stderr
    done = cli("report", "nope", cwd=tmp_path)  # no state at all: the session is named still
    assert done.returncode == 2 and "no session 'nope' found" in done.stderr


def test_build_reads_the_night(night: Night) -> None:
    """build(): versions, durations, per-phase pass rates, waits and the timeline, from state."""
    data = _build(night)
    assert data.headline.state == "green" and data.phases == PHASES
    assert [it.version for it in data.iterations] == list(VERSIONS)
    rates = [[_phase(it, p).pass_rate for p in PHASES] for it in data.iterations]
    assert rates == [[0.5, 0.5], [1.0, 0.5], [1.0, 1.0]]
    assert [(w.after_iteration, w.version) for w in data.waits] == [(1, "rev-2"), (2, "rev-3")]
    assert all(it.duration_s and it.duration_s > 0 for it in data.iterations)
    assert len(data.slowest) == 4 and data.budget.iterations_used == 3


def _phase(iteration: IterationInfo, name: str) -> PhaseStats:
    """The iteration's stats of one phase, which the night must have."""
    found = iteration.phase(name)
    assert found is not None, name
    return found


def _build(night: Night) -> report.ReportData:
    store = Store(night.state)
    try:
        return report.build(store, night.session.name)
    finally:
        store.close()


CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def test_report_renders_in_headless_chromium(night: Night, tmp_path: Path) -> None:
    """A real browser draws the page and its text carries the verdict and the versions."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed")
    page = tmp_path / "report.html"
    page.write_text(_html(night, tmp_path), encoding="utf-8")
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "r.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
        capture_output=True, timeout=90, check=False,
    )  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90
    ).stdout
    assert "GREEN" in dom and "every gate passed" in dom
    assert all(version in dom for version in VERSIONS)


# synthetic sessions: shapes the real night does not produce ------------------------------------
def _case(test: str, outcome: Outcome, seconds: float = 0.1, message: str = "") -> CaseResult:
    return CaseResult(test, test, "", outcome, seconds, message)


def _failing_session(tmp_path: Path) -> Store:
    """Four iterations: 'api' fails from iteration 2 on; a flaky test; a reopened issue."""
    store = Store(tmp_path / "state")
    row = SessionRow("s-1", "k", "s", str(tmp_path / "logs"), 1000.0, 99999.0, 10, "failing", 1,
                     2000.0)  # fmt: skip
    store.create_session(row)
    emit = Reporter(Journal(row.directory / "events.jsonl"), StoryRecorder(store, "s-1", str)).emit
    for n, version in enumerate(("v1", "v2", "v3", "v4"), start=1):
        ok = n == 1
        store.begin_iteration("s-1", n, version)
        emit(IterationStart(iteration=n, version=version))
        cases = (
            _case("t::ok", Outcome.PASSED, 2.5),
            _case("t::broken", Outcome.PASSED if ok else Outcome.FAILED, 0.5, "500 <b>x</b>"),
            _case(f"t::leak[{SECRET}]", Outcome.SKIPPED, 0.01),
        )
        store.save_run("s-1", n, "full", SuiteRun("api", "suite", cases, 3.0, 0 if ok else 1))
        rate = "100.0% (2/2)" if ok else "50.0% (1/2)"
        gates = (Verdict("pass_rate", ok, rate, "≥ 100%"),
                 Verdict("probe ws", False, "missing agent_completed", "ok"))  # fmt: skip
        flaky = ("t::wobbly",) if n == 3 else ()
        verdicts = tuple(v.describe() for v in gates)
        emit(PhaseEnd(phase="api", passed=ok, verdicts=verdicts, gates=gates, flaky=flaky))
        if n == 2:
            emit(IssueDone(action="created", number=7, title="api <down>",
                           fingerprint="v1-abc", dry_run=False))  # fmt: skip
        store.end_iteration("s-1", n, version, ok, {"phases": {"api": ok}, "duration_s": 60.0})
    emit(SessionEnd(status="failing", exit_code=1, iterations=4, reason="budget spent"))
    store.save_clusters("s-1", {"v1-abc": {"fingerprint": "v1-abc", "message": "500 <b>x</b>",
                                           "phase": "api", "tests": ["t::broken"],
                                           "first_seen_iteration": 2, "first_seen_version": "v2",
                                           "status": "open", "issue_number": 7}})  # fmt: skip
    return store


def test_failing_verdict_says_what_fails_and_since_when(tmp_path: Path) -> None:
    """The verdict names the failing phase, the iteration and version it began in, and the cause."""
    store = _failing_session(tmp_path)
    data = report.build(store, "s-1")
    (failing,) = data.headline.failing
    assert (failing.phase, failing.since_iteration, failing.since_version) == ("api", 2, "v2")
    assert [g.gate for g in failing.gates] == ["pass_rate", "probe ws"]
    (cluster,) = data.headline.open_clusters
    assert cluster.issue_number == 7 and cluster.last_seen_iteration is None  # tolerated gap
    md = report.to_markdown(data)
    first = "# ❌ FAILING — api still failing in iteration 4 on version v4 (budget spent)"
    assert md.splitlines()[0] == first
    assert "- **api** failing since iteration 2 (v2)" in md


def test_gates_flaky_and_slowest_tests(tmp_path: Path) -> None:
    """Gates are split into measured and threshold; flaky and slowest tests are listed."""
    data = report.build(_failing_session(tmp_path), "s-1")
    last = data.iterations[-1]
    gate = last.gates[0]
    assert (gate.gate, gate.measured, gate.threshold, gate.passed) == (
        "pass_rate", "50.0% (1/2)", "≥ 100%", False,
    )  # fmt: skip
    assert [(f.test, f.iterations) for f in data.flaky] == [("t::wobbly", (3,))]
    assert [s.test for s in data.slowest][:2] == ["t::ok", "t::broken"]
    html = report.to_html(data)
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "api &lt;down&gt;" in html and "4 / 10" in html


def test_write_reports_is_atomic_next_to_session_md(tmp_path: Path) -> None:
    """write_reports leaves both reports next to session.md: no temp files, no secrets."""
    store = _failing_session(tmp_path)
    paths = report.write_reports(store, "s-1", Redactor().redact)
    directory = tmp_path / "logs" / "s-1"
    assert paths == [directory / "report.md", directory / "report.html"]
    assert sorted(p.name for p in directory.iterdir()) == [
        "events.jsonl", "report.html", "report.md",
    ]  # fmt: skip
    assert (directory / "report.md").read_text().startswith("# ❌ FAILING")
    for path in paths:  # a secret in a test id is masked like everywhere else
        text = path.read_text()
        assert SECRET not in text and "[REDACTED]" in text


def test_the_report_reads_the_state_alone(tmp_path: Path) -> None:
    """Without events.jsonl the report reads the same: gates, issues, flaky tests, end reason."""
    store = _failing_session(tmp_path)
    before = report.to_markdown(report.build(store, "s-1"))
    (tmp_path / "logs" / "s-1" / "events.jsonl").unlink()
    data = report.build(store, "s-1")
    assert report.to_markdown(data) == before
    probe = data.iterations[-1].gates[1]
    assert (probe.gate, probe.passed, probe.measured, probe.threshold) == (
        "probe ws", False, "missing agent_completed", "ok",
    )  # fmt: skip
    assert [(i.number, i.opened and i.opened.version) for i in data.issues] == [(7, "v2")]
    assert data.budget.reason == "budget spent"


def test_a_session_recorded_before_the_story_still_reads(tmp_path: Path) -> None:
    """A session with runs and iterations but no story (an older run) builds, without gates."""
    store = Store(tmp_path / "state")
    row = SessionRow("old", "k", "s", str(tmp_path / "logs"), 1000.0, None, 3, "failing", 1,
                     2000.0)  # fmt: skip
    store.create_session(row)
    store.begin_iteration("old", 1, "v1")
    cases = (_case("t::ok", Outcome.PASSED), _case("t::bad", Outcome.FAILED, message="boom"))
    store.save_run("old", 1, "full", SuiteRun("api", "suite", cases, 1.0, 1))
    store.end_iteration("old", 1, "v1", False, {"phases": {"api": False}, "duration_s": 5.0})
    data = report.build(store, "old")
    assert data.headline.state == "failing" and data.phases == ("api",)
    assert data.iterations[0].gates == () and data.issues == ()
    assert report.to_markdown(data).startswith("# ❌ FAILING — api still failing in iteration 1")


@pytest.mark.parametrize(
    ("rate", "shown", "full_bar"),
    [(0.999, "99.9%", False), (0.9999, "99.9%", False), (1.0, "100%", True), (0.004, "<1%", False)],
)
def test_chart_never_rounds_a_failing_phase_to_100(rate: float, shown: str, full_bar: bool) -> None:
    """Item 15: 99.9 % reads "99.9% now" with a bar short of full; only 100 % is full."""
    from deployloop.report.markdown import BARS, _bar, percent

    assert percent(rate) == shown
    assert (_bar(rate) == BARS[-1]) is full_bar
