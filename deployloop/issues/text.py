"""The words of an issue: titles, bodies and comments, with the hidden marker that finds it again.

Rendering only: triage decides what to say, this module says it. Markdown throughout, with
untrusted text (test names, messages, output) fenced so it cannot break the page.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from deployloop import __version__
from deployloop.issues.neutralize import code_span
from deployloop.issues.records import (
    BROKEN_ERROR,
    ClusterRecord,
    Compare,
    Failing,
    PhaseInfo,
    TriageContext,
)
from deployloop.issues.tracker import marker

TITLE_LIMIT = 256
TEST_LIST_LIMIT = 50
EXCERPT_LINES = 40
EXCERPT_CHARS = 4000


def title_for(failing: Failing) -> str:
    """``[deployloop] phase: first line of the error — N tests``, at most 256 characters."""
    count = len(failing.tests)
    tail = f" — {count} test{'s' if count != 1 else ''}"
    if failing.broken_deploy:
        head = f"[deployloop] {failing.phase}: deployment broken"
        tail = f" — {count} of {failing.phase_tests} tests failing"
    else:
        headline = _short_type(first_line(failing.message)) or failing.error_type
        head = f"[deployloop] {failing.phase}: {headline}"
    room = TITLE_LIMIT - len(tail)
    if len(head) > room:
        head = head[: room - 1].rstrip() + "…"
    return head + tail


_QUALIFIED = re.compile(r"^(?:[A-Za-z_][\w]*\.)+(?=[A-Z]\w*(?:Error|Exception|Failure|Warning)?:)")


def typed(error_type: str, message: str) -> str:
    """``message`` led by ``error_type``, unless it already starts with it (or has none)."""
    if not error_type or message.startswith(error_type):
        return message
    return f"{error_type}: {message}"


def _short_type(line: str) -> str:
    """``websockets.exceptions.ConnectionClosedError: x`` → ``ConnectionClosedError: x``."""
    return _QUALIFIED.sub("", line)


def issue_body(failing: Failing, ctx: TriageContext, record: ClusterRecord, old: int | None) -> str:
    """A new issue's markdown, ending in its marker; ``old``: the issue closed too long ago."""
    info = ctx.phases.get(failing.phase, PhaseInfo(failing.phase))
    parts = [_summary(failing, ctx, info, old), history_line(record)]
    parts.append(_facts(failing, ctx, info, record))
    changes = _changes(record, ctx)
    if changes is not None:
        parts.append(compare_text(changes))
    if info.verdicts:
        parts.append("### Gate verdicts\n\n" + "\n".join(f"- {v}" for v in info.verdicts))
    if failing.causes:
        parts.append(_causes(failing.causes, failing.reasons))
    parts.append(f"### Failing tests ({len(failing.tests)})\n\n{list_tests(failing.tests)}")
    parts.append(_error(failing))
    parts.extend(_logs(failing, ctx))
    parts.append(_repro(failing, ctx))
    parts.append(f"Filed by deployloop {__version__}.")  # what ran, for bug reports
    parts.append(marker(failing.fingerprint))
    return "\n\n".join(parts) + "\n"


def _summary(failing: Failing, ctx: TriageContext, info: PhaseInfo, old: int | None) -> str:
    count = len(failing.tests)
    if failing.broken_deploy:
        text = (
            f"**Deployment broken**: {count} of {failing.phase_tests} tests in phase "
            f"`{info.name}` fail, for {failing.reasons} different reasons. One issue stands "
            "for all of them until the phase passes again."
        )
    else:
        plural = "s" if count != 1 else ""
        text = f"{count} test{plural} in phase `{info.name}` fail with one root cause."
    if old is not None:
        days = f"{ctx.issues.reopen_days:g}"
        text += f"\n\nThis failed before in #{old}, closed more than {days} days ago."
    return text


def _facts(failing: Failing, ctx: TriageContext, info: PhaseInfo, record: ClusterRecord) -> str:
    priority = f" (priority {info.priority})" if info.priority else ""
    rows = [
        ("Deployed version", _cell(ctx.version or "unknown")),
        ("Previous version", _cell(ctx.previous_version or "—")),
        ("Phase", f"`{info.name}`{priority}"),
        ("Iteration", str(ctx.iteration)),
        ("First seen", _first_seen(record)),
        ("Fingerprint", f"`{failing.fingerprint}`"),
    ]
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _first_seen(record: ClusterRecord) -> str:
    """``iteration 1, `rev-0001```; the version left out when none was read (not "`None`")."""
    version = record.first_seen_version
    return f"iteration {record.first_seen_iteration}" + (f", {_cell(version)}" if version else "")


def history_line(record: ClusterRecord) -> str:
    """``First seen failing on `B`, last passed on `A`.``, or, no good version known, ``Has
    failed on every version tested since <ISO time>.``"""
    first = record.failing_on[0] if record.failing_on else record.first_seen_version
    if record.last_good is not None:
        return (
            f"First seen failing on {_version(first)}, last passed on {_version(record.last_good)}."
        )
    since = record.first_failed_at or f"iteration {record.first_seen_iteration}"
    return (
        f"First seen failing on {_version(first)}; "
        f"has failed on every version tested since {since}."
    )


COMMIT_LIST_LIMIT = 20


def _changes(record: ClusterRecord, ctx: TriageContext) -> Compare | None:
    """The commits from the cause's last good version to this one, when both are known."""
    if ctx.compare is None or record.last_good is None or ctx.version is None:
        return None
    return ctx.compare(record.last_good, ctx.version)


def compare_text(compare: Compare) -> str:
    """The changes from last good to first bad: GitHub's compare link and the commits."""
    lines = [f"- `{c.sha[:12]}` {_inline(first_line(c.title))[:120]}" for c in compare.commits]
    shown = lines[:COMMIT_LIST_LIMIT]
    if compare.total > len(shown):
        shown.append(f"- … and {compare.total - len(shown)} more")
    listed = "\n".join(shown) or "(no commits listed)"
    return (
        f"### What changed\n\n[{compare.base[:12]}...{compare.head[:12]}]({compare.url}) "
        f"({compare.total} commit{'s' if compare.total != 1 else ''}):\n\n{listed}"
    )


def _causes(causes: Sequence[tuple[str, int]], reasons: int) -> str:
    lines = [f"- {count} × `{_inline(message)}`" for message, count in causes]
    if reasons > len(causes):
        lines.append(f"- … and {reasons - len(causes)} more causes")
    return "### Causes\n\n" + "\n".join(lines)


def _error(failing: Failing) -> str:
    """The chosen error line (a broken deploy's: its largest cause's), and the traceback.

    The line carries its own type when the rules looked past the message ("Failed")."""
    first = failing.cases[0][1]
    if failing.causes:
        head = failing.causes[0][0]
    elif first_line(first.message) == first_line(failing.message):
        head = typed(first.error_type, failing.message)
    else:
        head = failing.message
    text = f"### Error\n\n{fenced(excerpt(head, 20))}"
    if first.details.strip():
        text += f"\n\n### Traceback (excerpt)\n\n{fenced(excerpt(first.details))}"
    return text


def _logs(failing: Failing, ctx: TriageContext) -> list[str]:
    logs = {
        suite: about(ctx.log_excerpts.get(suite, ""), failing.tests) for suite in failing.suites
    }
    return [
        f"### Log excerpt: `{suite}`\n\n{fenced(excerpt(logs[suite]))}"
        for suite in failing.suites[:3]
        if logs[suite].strip()
    ]


_SECTION = re.compile(r"^_{3,} (\S.*?) _{3,}$")  # pytest's "____ test_name[1] ____" headers


def about(log: str, tests: Sequence[str]) -> str:
    """The lines of ``log`` about ``tests`` (ids): pytest's sections headed by their names and
    lines naming them, so an issue never shows another cause's traceback. A log without
    per-test sections (another runner's) is given whole: nothing in it tells causes apart.
    """
    lines = log.splitlines()
    if not any(_SECTION.match(line) for line in lines):
        return log
    ids = tests[:TEST_LIST_LIMIT]
    names = {_short(t) for t in ids}
    kept: list[str] = []
    inside = False
    for line in lines:
        if (header := _SECTION.match(line)) is not None:
            inside = _short(header.group(1)) in names
        if inside or any(t in line for t in ids):
            kept.append(line)
    return "\n".join(kept)


def _short(test: str) -> str:
    """``tests/t.py::TestA::test_b[1]`` and pytest's header ``TestA.test_b[1]`` → ``test_b[1]``."""
    head, bracket, params = test.rpartition("::")[2].partition("[")
    return head.rpartition(".")[2] + bracket + params


def _repro(failing: Failing, ctx: TriageContext) -> str:
    commands = [ctx.repro[s] for s in failing.suites[:3] if ctx.repro.get(s)]
    if not commands:
        return f"### Reproduce\n\n`deployloop run --once --phase {failing.phase}`"
    node_ids = [t for t in failing.tests if "::" in t][:5]
    if node_ids and len(commands) == 1 and "pytest" in commands[0]:
        # Just this cluster's tests, from the suite's directory: a quick local check of a fix.
        ids = " ".join(shlex.quote(t) for t in node_ids)
        commands.append(f"# just this cause's tests (ids from pytest's rootdir):\npytest {ids}")
    return "### Reproduce\n\n" + fenced("\n".join(dict.fromkeys(commands)), "sh")


def progress_text(
    prev: ClusterRecord,
    failing: Failing,
    ctx: TriageContext,
    joined: Sequence[str],
    new_version: bool,
) -> str:
    """The comment on a cluster still failing: a new version, or tests that joined it."""
    count = len(failing.tests)
    if new_version:
        was = _version(prev.last_seen_version)
        head = f"Still failing on {_version(ctx.version)} (was {was}): {count} tests."
    else:
        head = f"More tests fail with this error on {_version(ctx.version)}: {count} now."
    parts = [f"{head} Iteration {ctx.iteration}."]
    if joined:
        parts.append(f"Newly failing ({len(joined)}):\n\n{list_tests(joined)}")
    left = [t for t in prev.tests if t not in failing.tests]
    if left:
        parts.append(f"No longer failing with this error: {len(left)} tests.")
    return "\n\n".join(parts)


def fixed_text(prev: ClusterRecord, ctx: TriageContext, closing: bool) -> str:
    """The comment that closes (or, close_on_fix off, reports) a verified fix."""
    what = (
        f"phase `{prev.phase}` is no longer broken"
        if prev.error_type == BROKEN_ERROR
        else f"all {len(prev.tests)} tests of this cluster pass in phase `{prev.phase}`"
    )
    text = (
        f"✅ Verified fixed in {_version(ctx.version)}: {what} "
        f"(iteration {ctx.iteration}; last failed on {_version(prev.last_seen_version)})."
    )
    return text if closing else text + " Left open: close_on_fix is off."


def reopen_text(prev: ClusterRecord, failing: Failing, ctx: TriageContext) -> str:
    """The comment that reopens an issue failing again after its verified fix: "regressed in
    Y (fixed in X)", or "rolled back to Y" when Y ran tonight before X did."""
    now, fixed = _version(ctx.version), _version(prev.fixed_in)
    order = {version: at for at, version in reversed(list(enumerate(ctx.tonight)))}
    rollback = ctx.version in order and order[ctx.version] < order.get(prev.fixed_in or "", -1)
    head = f"Rolled back to {now}" if rollback else f"Regressed in {now}"
    return (
        f"{head} (fixed in {fixed}): failing again in iteration {ctx.iteration}, "
        f"{len(failing.tests)} tests.\n\n" + list_tests(failing.tests)
    )


def refailing_text(failing: Failing, ctx: TriageContext) -> str:
    """What a cause's issue, closed as completed by a person while the cause still fails, is
    reopened with (after "Still failing on <version>", which ``deliver`` writes)."""
    return (
        f"{len(failing.tests)} tests fail with this error in iteration {ctx.iteration}:\n\n"
        + list_tests(failing.tests)
    )


def deferred_text(waiting: Sequence[ClusterRecord], cap: int) -> str:
    """The comment listing new clusters held back by max_new_per_iteration (``cap``)."""
    # Titles quote test output: in code, where GitHub links and mentions nothing.
    lines = [f"- `{_inline(record.title)}` (`{record.fingerprint}`)" for record in waiting]
    return (
        f"{len(waiting)} more new failure clusters this iteration wait for an issue "
        f"(max_new_per_iteration = {cap}); they are filed in later iterations:\n\n"
        + "\n".join(lines)
    )


def list_tests(tests: Sequence[str], limit: int = TEST_LIST_LIMIT) -> str:
    """A markdown list of the first ``limit`` test ids as inline code, then how many more."""
    lines = [f"- `{_inline(t)}`" for t in tests[:limit]]
    if len(tests) > limit:
        lines.append(f"- … and {len(tests) - limit} more")
    return "\n".join(lines)


def excerpt(text: str, lines: int = EXCERPT_LINES, chars: int = EXCERPT_CHARS) -> str:
    """The end of ``text``: where tracebacks and logs say what went wrong."""
    kept = text.strip("\n").splitlines()[-lines:]
    out = "\n".join(kept)
    return out if len(out) <= chars else "…" + out[-chars:]


def fenced(text: str, lang: str = "") -> str:
    """A code block whose fence is longer than any backtick run inside ``text``."""
    longest = max((len(run) for run in _backtick_runs(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def _backtick_runs(text: str) -> list[str]:
    runs, current = [], ""
    for char in text:
        if char == "`":
            current += char
        elif current:
            runs.append(current)
            current = ""
    return [*runs, current] if current else runs


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped; "" when there is none."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _inline(text: str) -> str:
    return text.replace("`", "'").replace("\n", " ")


def _version(version: str | None) -> str:
    """A deployed version (the target's own text) as inline code it cannot break out of."""
    return code_span(str(version))


def _cell(text: str | None) -> str:
    """Inline code for a table cell: GFM splits cells at ``|`` even inside code."""
    return _version(text).replace("|", "\\|")
