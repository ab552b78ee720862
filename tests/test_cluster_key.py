"""One cluster key for a failure everywhere: session.md, ``results --json`` and the issue marker."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from deployloop.clustering import key_cases
from deployloop.fingerprint import fingerprint, v1_fingerprint
from deployloop.issues.observe import observe
from deployloop.models import Outcome, SuiteRun
from deployloop.summary import summarize
from deployloop.testing import case, context
from tests.helpers import cli, config_text, phase_block, session_dirs, suite_block

MARKER = re.compile(r"<!-- deployloop:fingerprint=(v2-[0-9a-f]{12}) -->")
SESSION_CLUSTER = re.compile(r"failing cluster `(v2-[0-9a-f]{12})`")

# A runner that is not pytest (Playwright, jest, a shell script) often writes a failure with
# neither a type attribute nor a traceback to read one from.
WRITER = """\
import pathlib, sys
pathlib.Path(sys.argv[1]).write_text(
    '<testsuite name="checkout" tests="2">'
    '<testcase classname="checkout" name="total">'
    '<failure message="expected total 42, got 41"/></testcase>'
    '<testcase classname="checkout" name="cart"/></testsuite>',
    encoding="utf-8",
)
sys.exit(1)
"""


def test_v1_keys_a_typeless_failure_by_its_outcome() -> None:
    """v1_fingerprint (migration) keys a typeless case by its outcome, else by its type."""
    typeless = case("t::a", Outcome.FAILED, "expected total 42, got 41")
    typed = case("t::b", Outcome.FAILED, "expected total 42, got 41", "AssertionError")
    assert v1_fingerprint(typeless) == fingerprint("failed", "expected total 42, got 41")
    assert v1_fingerprint(typed) == fingerprint("AssertionError", "expected total 42, got 41")
    assert v1_fingerprint(typeless) != v1_fingerprint(typed)


def test_the_cluster_key_is_v2() -> None:
    """key_cases keys failures by v2 prints, one cause one key."""
    one = case("t::a", Outcome.FAILED, "expected total 42, got 41")
    two = case("t::b", Outcome.FAILED, "expected total 43, got 40")
    keys = {found.key for found in key_cases([one, two])}
    assert len(keys) == 1 and keys.pop().startswith("v2-")


def test_summary_and_triage_agree_on_a_typeless_failure() -> None:
    """The summary's cluster and triage's cluster of a typeless failure carry the same key."""
    failed = case("t::a", Outcome.ERROR, "connection reset by peer")
    run = SuiteRun("websocket", "agents", (failed,), wall_s=1.0, exit_code=1)
    (cluster,) = summarize([failed]).clusters
    (observed,) = observe([run], context()).failing
    assert cluster.fingerprint == observed


def test_run_results_and_issue_marker_name_one_fingerprint(tmp_path: Path) -> None:
    """A real run of a typeless failure: session.md, results --json and the issue agree."""
    writer = tmp_path / "write_junit.py"
    writer.write_text(WRITER, encoding="utf-8")
    junit = tmp_path / "out" / "checkout.xml"
    junit.parent.mkdir()
    run = f"{sys.executable} {writer} {junit}"
    suite = suite_block("checkout", run, junit=str(junit))
    (tmp_path / "deployloop.toml").write_text(config_text(phase_block("journeys", suite)))
    done = cli("run", "--once", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    (session,) = session_dirs(tmp_path / "logs")
    in_log = SESSION_CLUSTER.findall((session / "session.md").read_text(encoding="utf-8"))
    listed = cli("results", "--json", str(session / "1" / "checkout.xml"), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    in_results = [c["fingerprint"] for c in json.loads(listed.stdout)["clusters"]]
    issues = sorted((tmp_path / "logs" / "issues").glob("*.md"))
    in_issues = [m for path in issues for m in MARKER.findall(path.read_text(encoding="utf-8"))]
    assert in_log and len(set(in_log)) == 1
    assert in_results == [in_log[0]]
    assert in_issues == [in_log[0]]
