"""A tracker no test output, permission or person can fool (issue 16), through real PyGithub
against the local GitHub stand-in: forged markers, dropped labels, pull requests, shared state
directories, live markup in test text, hand-closed issues and incomplete listings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from deployloop.issues.deliver import SyncResult, apply
from deployloop.issues.github import GitHubTracker
from deployloop.issues.ledger import Ledger, TrackerId
from deployloop.issues.outbox import Outbox
from deployloop.issues.records import ClusterRecord, TriageContext
from deployloop.issues.tracker import marker_of
from deployloop.issues.triage import assess, with_issue_numbers
from deployloop.models import SuiteRun
from deployloop.redact import Redactor
from deployloop.testing import CAUSES, FakeClock, cause_map, context, failing_run
from deployloop.testing.github_server import FakeGitHub, Fault


@dataclass
class Session:
    """One deployloop session: a tracker, its records; the state directory outlives it."""

    github: FakeGitHub
    state: Path
    token: str
    max_new: int | None = 5
    records: dict[str, ClusterRecord] = field(default_factory=dict)
    results: list[SyncResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        identity = TrackerId("github", self.github.url, self.github.repo)
        self.outbox = Outbox(self.state, identity)
        self.tracker = GitHubTracker(
            self.github.repo,
            self.token,
            self.github.url,
            clock=FakeClock(),
            ledger=Ledger.for_tracker(self.state, identity),
        )

    def iterate(self, runs: Sequence[SuiteRun], ctx: TriageContext) -> SyncResult:
        records, actions = assess(self.records, runs, ctx)
        result = apply(actions, self.tracker, self.outbox, Redactor(), max_new=self.max_new)
        self.records = with_issue_numbers(records, result.issue_numbers)
        self.results.append(result)
        return result


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def sessions(github: FakeGitHub, tmp_path: Path) -> Iterator[list[Session]]:
    """Sessions opened by ``start``; their trackers are disposed of at the end."""
    made: list[Session] = []
    yield made
    for session in made:
        session.tracker.dispose()


def start(
    made: list[Session], github: FakeGitHub, state: Path, token: str = "", max_new: int = 5
) -> Session:
    session = Session(github, state, token or github.token, max_new)
    made.append(session)
    return session


def runs(*counts: int, fixed: frozenset[str] = frozenset(), **kw: str) -> list[SuiteRun]:
    return [failing_run(cause_map(*counts), passing=10, fixed=fixed, **kw)]


def creates(github: FakeGitHub) -> int:
    return len(github.requests("POST", r"/issues$"))


def marked(github: FakeGitHub) -> dict[int, str | None]:
    """Every real issue (no pull request) by number → the marker deployloop reads from it."""
    return {n: marker_of(i["body"]) for n, i in github.issues.items() if not i["pull"]}


# 1. identity from untrusted text -------------------------------------------------------------


def test_forged_marker_in_output_and_message_neither_retags_nor_refiles(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """A test printing and asserting the victim's marker gets its own issue, with its own
    marker as the only live one; a new session files nothing again."""
    first = start(sessions, github, tmp_path)
    first.iterate(runs(3), context())
    victim = next(iter(first.records))
    forged = f"<!-- deployloop:fingerprint={victim} -->"
    attacker = [failing_run({f"token check failed {forged}": 2}, passing=5, suite="evil")]
    ctx = replace(context(2), log_excerpts={"evil": f"printed\n{forged}\n"})
    result = first.iterate([*runs(3), *attacker], ctx)
    assert list(result.created.values()) == [2]
    assert marker_of(github.issues[2]["body"]) != victim
    assert github.issues[2]["body"].count("deployloop:fingerprint=") == 1
    assert github.comments(1) == []
    again = start(sessions, github, tmp_path).iterate([*runs(3), *attacker], ctx)
    assert creates(github) == 2
    assert set(again.adopted.values()) == {1, 2}


def test_the_marker_reader_looks_only_at_the_last_line(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """A body quoting another cause's marker (as an older version posted it) is read by its
    last line only: the quoted marker neither re-tags the issue nor claims the victim."""
    quoted = "<!-- deployloop:fingerprint=v1-00000000000a -->"
    own = "<!-- deployloop:fingerprint=v1-00000000000b -->"
    github.add_issue("older", f"```\n{quoted}\n```\n\n{own}\n", ["deployloop"])
    github.add_issue("forged only", f"{quoted}\n\ntext after it", ["deployloop"])
    found = start(sessions, github, tmp_path).tracker.existing()
    assert {fp: issue.number for fp, issue in found.items()} == {"v1-00000000000b": 1}


def test_an_issue_carrying_a_marker_by_someone_else_is_not_adopted(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """Ownership comes from GitHub's author: a stranger's issue with the right marker is ignored."""
    session = start(sessions, github, tmp_path)
    fp = next(iter(assess({}, runs(3), context())[0]))
    github.add_issue("bait", f"x\n\n<!-- deployloop:fingerprint={fp} -->", [], author="mallory")
    result = session.iterate(runs(3), context())
    assert result.adopted == {}
    assert list(result.created.values()) == [2]
    assert github.comments(1) == []


def test_a_rotated_token_on_a_new_account_keeps_the_old_issues(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """Issues filed under the old bot are still deployloop's after the token moves: the ledger
    remembers the login, so nothing is filed again."""
    start(sessions, github, tmp_path).iterate(runs(3, 2), context())
    github.add_token("ghp_" + "n" * 36, "deployloop-bot-2")
    result = start(sessions, github, tmp_path, token="ghp_" + "n" * 36).iterate(
        runs(3, 2), context()
    )
    assert sorted(result.adopted.values()) == [1, 2]
    assert creates(github) == 2


# 2. labels dropped on create -----------------------------------------------------------------


def test_labels_dropped_over_three_sessions_make_no_duplicate(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """Without push access GitHub drops the labels: one warning, and three sessions file one
    issue per cause — also the third, whose state directory was lost."""
    github.push_access = False
    first = start(sessions, github, tmp_path / "state")
    first.iterate(runs(3, 2), context())
    assert [i["labels"] for i in github.issues.values()] == [[], []]
    assert len(first.results[0].warnings) == 1
    assert "dropped label(s) deployloop" in first.results[0].warnings[0]
    start(sessions, github, tmp_path / "state").iterate(runs(3, 2), context(2, "rev-002"))
    third = start(sessions, github, tmp_path / "lost").iterate(runs(3, 2), context(3, "rev-003"))
    assert creates(github) == 2
    assert sorted(third.adopted.values()) == [1, 2]


def test_a_403_creating_a_label_does_not_block_filing(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """GitHub refuses to create a label: issues are filed without it, a warning names it."""
    github.labels_forbidden = True
    github.add_label("deployloop")
    result = start(sessions, github, tmp_path).iterate(runs(3, 2), context())
    assert len(result.created) == 2 and result.queued == 0
    assert github.issues[1]["labels"] == ["deployloop"]
    assert any("'e2e-failure'" in w and "by hand" in w for w in result.warnings)


# 3. pull requests ----------------------------------------------------------------------------


def test_a_pull_request_with_label_and_marker_is_never_touched(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """A PR carrying the label and the cause's marker is not adopted, commented on or closed;
    the real issue is filed, then closed when verified fixed."""
    fp = next(iter(assess({}, runs(3), context())[0]))
    body = f"fix\n\n<!-- deployloop:fingerprint={fp} -->"
    pr = github.add_issue("Fix the socket", body, ["deployloop"], pull=True)
    session = start(sessions, github, tmp_path)
    assert session.iterate(runs(3), context()).created == {fp: 2}
    session.iterate(runs(3, fixed=frozenset({CAUSES[0]})), context(2, "rev-002"))
    assert github.issues[2]["state"] == "closed"
    assert github.issues[pr]["state"] == "open" and github.comments(pr) == []
    assert github.requests(path=rf"/issues/{pr}") == []


# 4. state scoped to its config -----------------------------------------------------------------


def test_two_configs_sharing_a_state_directory_deliver_only_to_their_own_repo(
    tmp_path: Path, sessions: list[Session]
) -> None:
    """Config A's writes queued while its GitHub is down never reach config B's repository;
    each repository gets exactly its own issues once A's GitHub is back."""
    with FakeGitHub("acme/a") as a, FakeGitHub("acme/b") as b:
        a.inject(Fault.down())
        first_a = start(sessions, a, tmp_path).iterate(runs(3, 2), context())
        assert first_a.queued == 2
        first_b = start(sessions, b, tmp_path).iterate(runs(4), context())
        assert (first_b.replayed, len(b.issues)) == (0, 1)
        assert len(Outbox(tmp_path, TrackerId("github", a.url, a.repo)).pending()) == 2
        a.clear_faults()
        later_a = start(sessions, a, tmp_path).iterate(runs(3, 2), context(2))
        assert (later_a.replayed, len(a.issues), len(b.issues)) == (2, 2, 1)
        assert len(list(tmp_path.glob("ledger-*.json"))) == 2
        assert not (tmp_path / "outbox.json").exists()


# 5. untrusted text never posted live -----------------------------------------------------------

LIVE = "@alice @acme/oncall #123 acme/platform#9 GH-7 <img src=x onerror=alert(1)> <b>hi</b>"
MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9][\w-]*")
REFERENCE = re.compile(r"(?:(?<![\w])#\d|\bGH-\d)", re.IGNORECASE)
OWN_MARKER = re.compile(r"<!-- deployloop:fingerprint=v[12]-[0-9a-f]{12} -->\n?")


def live_markup(markdown: str, *, body: bool) -> list[str]:
    """Mentions, references and raw HTML a markdown parser finds outside code; an issue
    body's own marker on its last line is the one HTML allowed."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    if body and tokens and tokens[-1].type == "html_block":
        assert OWN_MARKER.fullmatch(tokens[-1].content), tokens[-1].content
        tokens = tokens[:-1]
    return [found for token in tokens for found in _live(token)]


def _live(token: Token) -> Iterator[str]:
    if token.type in ("html_block", "html_inline"):
        yield token.content
    if token.type == "text":
        yield from MENTION.findall(token.content)
        yield from REFERENCE.findall(token.content)
    for child in token.children or ():
        yield from _live(child)


def test_mentions_references_html_and_backticks_are_never_live(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """Test messages, test ids and versions full of live markup: everything posted — titles,
    bodies, the "more causes wait" comment, verified fixed, still failing — parses inert."""
    session = start(sessions, github, tmp_path, max_new=1)
    messages = {f"{LIVE} `x` first": 3, f"{LIVE} second ``` y": 2}
    evil = "rev-``1` @bob #5 <i>"

    def night(fixed: frozenset[str] = frozenset()) -> list[SuiteRun]:
        run = failing_run(messages, passing=5, fixed=fixed)
        cases = tuple(replace(c, id=f"{c.id}[{LIVE}`]") for c in run.cases)
        return [replace(run, cases=cases)]

    session.iterate(night(), context(version=evil, max_new_per_iteration=1))
    session.iterate(night(), context(2, version=evil + "2", max_new_per_iteration=1))
    fixed = frozenset({next(iter(messages))})
    session.iterate(night(fixed), context(3, version=evil + "3", max_new_per_iteration=1))
    posted = [(c.body["title"], False) for c in github.requests("POST", r"/issues$")]
    posted += [
        (c.body["body"], c.path.endswith("/issues"))
        for c in github.requests("POST", r"/(issues|comments)$")
    ]
    assert len(posted) >= 6 and any("Verified fixed" in text for text, _ in posted)
    assert any("wait for an issue" in text for text, _ in posted)
    for text, body in posted:
        assert live_markup(text, body=body) == [], text
    assert "rev-``1` @bob #5 <i>" in github.comments(1)[-1]  # inert, yet shown as it is


# a person's word stands ----------------------------------------------------------------------


def test_closed_as_not_planned_stays_closed_and_silent(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """Closed by hand as not planned while still failing: no comment, no reopen, no new issue,
    also in a later session; the cause is reported muted by that issue."""
    session = start(sessions, github, tmp_path)
    fp = next(iter(session.iterate(runs(3), context()).created))
    github.close_by_hand(1, "not_planned")
    result = session.iterate(runs(4), context(2, "rev-002"))
    assert result.muted == {fp: 1}
    later = start(sessions, github, tmp_path).iterate(runs(4), context(3, "rev-003"))
    assert later.muted == {fp: 1}
    assert github.issues[1]["state"] == "closed" and github.comments(1) == []
    assert creates(github) == 1


def test_closed_as_completed_while_failing_is_reopened_in_the_same_session(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """Closed by hand as completed but failing on the next version: reopened at once, with one
    comment saying it still fails on that version."""
    session = start(sessions, github, tmp_path)
    fp = next(iter(session.iterate(runs(3), context()).created))
    github.close_by_hand(1, "completed")
    result = session.iterate(runs(3), context(2, "rev-002"))
    assert result.reopened == {fp: 1}
    assert github.issues[1]["state"] == "open"
    [comment] = github.comments(1)
    assert comment.startswith("Still failing on `rev-002`")


# never trust an incomplete listing -----------------------------------------------------------


def test_a_listing_that_omits_a_known_issue_is_checked_by_number(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """The ledger knows issue #1; the listing leaves it out: it is read by number and adopted."""
    start(sessions, github, tmp_path).iterate(runs(3), context())
    github.hidden.add(1)
    result = start(sessions, github, tmp_path).iterate(runs(3), context(2))
    assert list(result.adopted.values()) == [1]
    assert creates(github) == 1
    assert len(github.requests("GET", r"/issues/1$")) == 1


def test_more_creations_than_allowed_stop_filing_and_wait(
    github: FakeGitHub, tmp_path: Path, sessions: list[Session]
) -> None:
    """More creates than max_new in one apply (a replayed outbox on top of new causes): filing
    stops, the rest waits in the outbox, and the reason says why."""
    session = start(sessions, github, tmp_path, max_new=2)
    github.inject(Fault.down())
    session.iterate(runs(3, 2), context())
    github.clear_faults()
    result = session.iterate(runs(3, 2, 1, 1), context(2, "rev-002"))
    assert len(result.created) == 2
    assert result.queued > 0
    assert result.error and "max_new_per_iteration = 2" in result.error
