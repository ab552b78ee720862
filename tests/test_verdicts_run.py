"""Verdicts of real pytest suites run through the real ``deployloop run`` (issue 15): pytest's
own counts (read from its summary line in the suite's log) and the right gate, whatever the run
line looks like: --reruns, -x, xdist, subtests and xfail, shell syntax, the user's --junitxml."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli, config_text, phase_block, session_dirs, suite_block, write_tests

SUMMARY = re.compile(r"(\d+) (failed|passed|skipped|xfailed|xpassed|errors?|deselected|rerun)\b")
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider -o addopts="

# Fails on its first attempt only (FLAG_DIR keeps the attempt), and a plain pass beside it.
FLAKY_ONCE_TESTS = """
def test_flaky_once():
    marker = os.path.join(os.environ["FLAG_DIR"], "tried")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise AssertionError("first attempt fails")

def test_catalog():
    pass
"""
XFAIL_TESTS = """
@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert False

@pytest.mark.xfail(reason="fixed upstream")
def test_fixed_upstream():
    pass
"""
FLAKY_AND_BROKEN = (
    """
import os

def test_payment_backend_answers():
    assert 503 == 200, "payment backend returned 503"
"""
    + FLAKY_ONCE_TESTS
)

SUBTESTS_AND_XFAIL = (
    """
import pytest
"""
    + XFAIL_TESTS
    + """
def test_regions(subtests):
    for region in ("eu", "us"):
        with subtests.test(region=region):
            assert region == "eu", f"region {region} answered 500"

def test_health():
    pass
"""
)


@pytest.fixture(autouse=True)
def _no_outer_addopts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suites run with this interpreter, isolated from the outer pytest's options."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


def run_night(tmp_path: Path, run: str, *, rerun: bool = False, **suite: Any) -> dict[str, Any]:
    """One ``deployloop run --once`` of one suite; its exit code, events and files."""
    gates = suite.pop("gates", {"pass_rate": 1.0})
    block = suite_block("e2e", run, env={"FLAG_DIR": str(tmp_path)}, **suite)
    retest = f"[retest]\nrerun_failed = {'true' if rerun else 'false'}\n"
    text = config_text(phase_block("api", block, gates=gates), extra=retest)
    (tmp_path / "deployloop.toml").write_text(text, encoding="utf-8")
    done = cli("run", "--once", "--new", cwd=tmp_path)
    (session,) = session_dirs(tmp_path / "logs")
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    return {"code": done.returncode, "events": events, "dir": session, "out": done.stdout}


def suite_ends(night: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """pass name ("full", "rerun") → its suite_end event."""
    return {e["pass"]: e for e in night["events"] if e["event"] == "suite_end"}


def verdicts(night: dict[str, Any]) -> list[str]:
    (phase,) = [e for e in night["events"] if e["event"] == "phase_end"]
    return list(phase["verdicts"])


def own_counts(log: Path) -> dict[str, int]:
    """pytest's own summary line (its last line with counts) in a suite's log."""
    lines = [ln for ln in log.read_text().splitlines() if SUMMARY.search(ln) and " in " in ln]
    return {
        word.rstrip("s") if word.startswith("error") else word: int(n)
        for n, word in SUMMARY.findall(lines[-1])
    }


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


@pytest.mark.parametrize("extra", ["--reruns 1", "--reruns 1 -n 2"], ids=["reruns", "xdist"])
def test_reruns_count_as_pytest_counts_them(tmp_path: Path, extra: str) -> None:
    """--reruns (and -n 2): the session counts what pytest's summary counts; the always-failing
    test fails the gate, the one that passed on its second attempt does not."""
    write_tests(tmp_path / "e2e", "test_e2e.py", FLAKY_AND_BROKEN)
    night = run_night(tmp_path, f"{PYTEST} {extra} e2e")
    full = suite_ends(night)["full"]
    own = own_counts(night["dir"] / "1" / "e2e.log")
    assert own.pop("rerun") == 2
    assert nonzero(full["counts"]) == own == {"failed": 1, "passed": 2}
    assert "❌ pass_rate: 66.7% (2/3) (threshold ≥ 100%)" in verdicts(night)
    assert night["code"] == 1


def test_stopped_early_fails_the_gate_and_says_how_many_did_not_run(tmp_path: Path) -> None:
    """-x: 4 of 5 collected tests never ran; the phase fails saying so, where the pass rate
    alone (0.0 required) would pass (item 3)."""
    source = "def test_a():\n    assert False\n" + "".join(
        f"def test_{n}():\n    pass\n" for n in "bcde"
    )
    write_tests(tmp_path / "e2e", "test_e2e.py", source)
    night = run_night(tmp_path, f"{PYTEST} -x e2e", gates={"pass_rate": 0.0})
    assert own_counts(night["dir"] / "1" / "e2e.log") == {"failed": 1}
    assert "❌ e2e: harness: stopped early: 4 of 5 tests did not run (threshold a clean run)" in (
        verdicts(night)
    )
    assert night["code"] == 1


def test_subtests_and_xfail_keep_pytests_categories(tmp_path: Path) -> None:
    """Subtests count once per test, xfail and xpass keep their names; pass rate over judged."""
    write_tests(tmp_path / "e2e", "test_e2e.py", SUBTESTS_AND_XFAIL)
    night = run_night(tmp_path, f"{PYTEST} e2e", gates={"pass_rate": 0.6})
    full = suite_ends(night)["full"]
    assert nonzero(full["counts"]) == {"passed": 1, "failed": 1, "xfailed": 1, "xpassed": 1}
    own = own_counts(night["dir"] / "1" / "e2e.log")
    assert (own["xfailed"], own["xpassed"]) == (1, 1)  # pytest counts subtests its own way
    assert (
        'message="xfail-marked test passes unexpectedly"'
        in (night["dir"] / "1" / "e2e.xml").read_text()
    )
    assert "✅ pass_rate: 66.7% (2/3) (threshold ≥ 60%)" in verdicts(night)
    assert night["code"] == 0


def test_shell_run_line_is_still_pytest(tmp_path: Path) -> None:
    """`cd e2e && VAR=x pytest …`: deployloop's report is written (through PYTEST_ADDOPTS),
    the counts are pytest's and the gate is judged, not a harness error (item 7)."""
    source = "import os\ndef test_env():\n    assert os.environ['STAGE'] == 'night'\n"
    write_tests(tmp_path / "e2e", "test_e2e.py", source + "def test_b():\n    assert False\n")
    night = run_night(tmp_path, f"cd e2e && STAGE=night {PYTEST} test_e2e.py")
    full = suite_ends(night)["full"]
    assert full["harness_error"] is None
    assert (
        nonzero(full["counts"])
        == own_counts(night["dir"] / "1" / "e2e.log")
        == {
            "passed": 1,
            "failed": 1,
        }
    )
    assert "❌ pass_rate: 50.0% (1/2) (threshold ≥ 100%)" in verdicts(night)


def test_users_own_junitxml_is_written_too(tmp_path: Path) -> None:
    """A --junitxml in the run line is honoured: the user's report and deployloop's both exist
    and agree (item 14)."""
    write_tests(tmp_path / "e2e", "test_e2e.py", "def test_a():\n    pass\n")
    mine = tmp_path / "mine.xml"
    night = run_night(tmp_path, f"{PYTEST} --junitxml={mine} -o junit_family=xunit2 e2e")
    assert night["code"] == 0, night["out"]
    assert 'name="test_a"' in mine.read_text()
    assert 'name="test_a"' in (night["dir"] / "1" / "e2e.xml").read_text()


def test_rerun_runs_only_the_failed_test_when_run_names_the_file(tmp_path: Path) -> None:
    """Case 19: run names the file; the rerun of its one failed test runs that test alone, and
    a test that passes on the rerun is flaky, forgiven (item 10)."""
    write_tests(tmp_path / "e2e", "test_p1.py", FLAKY_AND_BROKEN.replace("assert 503", "pass #"))
    night = run_night(tmp_path, f"{PYTEST} e2e/test_p1.py", rerun=True)
    rerun_log = night["dir"] / "1" / "e2e+rerun.log"
    assert own_counts(rerun_log) == {"passed": 1}  # the other two are not even made items
    assert nonzero(suite_ends(night)["rerun"]["counts"]) == {"passed": 1}
    assert "✅ pass_rate: 100.0% (3/3) (threshold ≥ 100%)" in verdicts(night)
    assert night["code"] == 0


def test_stopped_early_is_seen_under_xdist(tmp_path: Path) -> None:
    """-x with -n 2: xdist's controller collects nothing itself, yet the count its workers
    report back makes the partial run "stopped early", and the gate fails (issue 15 item 3)."""
    slow = "".join(f"def test_{n}():\n    time.sleep(0.2)\n" for n in range(40))
    source = f"import time\n\ndef test_a():\n    assert False\n{slow}"
    write_tests(tmp_path / "e2e", "test_e2e.py", source)
    night = run_night(tmp_path, f"{PYTEST} -x -n 2 e2e", gates={"pass_rate": 0.0})
    (harness,) = [v for v in verdicts(night) if "harness" in v]
    found = re.search(r"stopped early: (\d+) of 41 tests did not run", harness)
    assert found is not None, harness
    assert 0 < int(found[1]) < 41
    assert night["code"] == 1


TWO_CAUSES_BEHIND_ONE_ASSERT = """
import traceback

def helper_os():
    raise OSError("disk quota exceeded on /var/data")

def helper_key():
    return {}["agent_id"]

def run(helper):
    try:
        helper()
    except Exception:
        return 1, traceback.format_exc()
    return 0, ""

def test_os_a():
    code, out = run(helper_os); print(out); assert code == 0

def test_os_b():
    code, out = run(helper_os); print(out); assert code == 0

def test_os_c():
    code, out = run(helper_os); print(out); assert code == 0

def test_key_a():
    code, out = run(helper_key); print(out); assert code == 0

def test_key_b():
    code, out = run(helper_key); print(out); assert code == 0

def test_key_c():
    code, out = run(helper_key); print(out); assert code == 0
"""


def test_exceptions_in_captured_output_split_a_bare_assert(tmp_path: Path) -> None:
    """Two root causes behind one ``assert 1 == 0`` (printed to captured output, pytest's
    default junit_logging=no) are two clusters: the captured output reaches clustering."""
    write_tests(tmp_path / "e2e", "test_two.py", TWO_CAUSES_BEHIND_ONE_ASSERT)
    night = run_night(tmp_path, f"{PYTEST} e2e")
    (phase_end,) = [e for e in night["events"] if e["event"] == "phase_end"]
    clusters = sorted((c["count"], c["message"]) for c in phase_end["clusters"])
    assert len(clusters) == 2, clusters
    assert [count for count, _ in clusters] == [3, 3]
    assert sorted(m.split(":")[0] for _, m in clusters) == ["KeyError", "OSError"]


WRITE_JUNIT = """
import pathlib, sys
out = pathlib.Path("out")
out.mkdir(exist_ok=True)
head = b'<testsuite name="s"><testcase classname="t" name="a" time="0.1"/>'
(out / "a.xml").write_bytes(head + b'<testcase classname="t" name="b" time="0.1"/>'
                            b"</testsuite>" + sys.argv[1].encode())
if len(sys.argv) > 2:
    (out / "b.xml").write_bytes(head)
"""


def test_junit_repairs_are_told_in_the_runs_story(tmp_path: Path) -> None:
    """A JUnit file with trailing garbage is read whole, and its repair is an event in
    events.jsonl, a line in session.md and on the console, naming the file (item 3)."""
    (tmp_path / "write.py").write_text(WRITE_JUNIT, encoding="utf-8")
    night = run_night(tmp_path, f"{sys.executable} write.py JUNK", junit="out/*.xml")
    (repaired,) = [e for e in night["events"] if e["event"] == "junit_repaired"]
    note = "out/a.xml: 4 trailing byte(s) after the root element dropped"
    assert repaired["notes"] == [note]
    assert suite_ends(night)["full"]["counts"]["passed"] == 2
    assert note in (night["dir"] / "session.md").read_text(encoding="utf-8")
    assert note in night["out"]


def test_a_truncated_file_among_several_is_named(tmp_path: Path) -> None:
    """With junit = "out/*.xml", the harness error of a truncated file names it (item 3)."""
    (tmp_path / "write.py").write_text(WRITE_JUNIT, encoding="utf-8")
    night = run_night(tmp_path, f"{sys.executable} write.py '' cut", junit="out/*.xml")
    harness = suite_ends(night)["full"]["harness_error"]
    assert harness.startswith("JUnit file unreadable: out/b.xml: truncated XML")
