"""What a night shows of real pytest suites (issue 15 leftovers): every flaky test listed as
flaky (runner-level reruns and deployloop's own rerun) in the phase_end event, session.md and
the report; pytest's categories wherever counts are shown; forgiven failures never a failing
cluster of a green phase; the user's own --junitxml holds the main run, not a rerun's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployloop.pytestline import drops_addopts
from tests.helpers import cli, write_tests
from tests.test_verdicts_run import (
    FLAKY_ONCE_TESTS,
    PYTEST,
    XFAIL_TESTS,
    run_night,
    suite_ends,
)

FLAKY_ONCE = "\nimport os\nimport pytest\n" + FLAKY_ONCE_TESTS + XFAIL_TESTS
FLAKY_ID = "e2e/test_e2e.py::test_flaky_once"


@pytest.fixture(autouse=True)
def _no_outer_addopts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suites run with this interpreter, isolated from the outer pytest's options."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


def phase_end(night: dict[str, Any]) -> dict[str, Any]:
    events: list[dict[str, Any]] = night["events"]
    (event,) = [e for e in events if e["event"] == "phase_end"]
    return event


def reports(tmp_path: Path) -> tuple[str, str]:
    """The night's morning report as markdown and as HTML."""
    md, html = tmp_path / "report.md", tmp_path / "report.html"
    for fmt, out in (("md", md), ("html", html)):
        done = cli("report", "--format", fmt, "-o", str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    return md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("extra", "rerun"), [("--reruns 1", False), ("", True)], ids=["runner-reruns", "own-rerun"]
)
def test_every_flaky_test_is_listed_and_no_failing_cluster_is(
    tmp_path: Path, extra: str, rerun: bool
) -> None:
    """A test that failed, then passed (on pytest-rerunfailures' attempt or deployloop's rerun
    pass) is in phase_end's flaky list, session.md and both reports; the green phase shows no
    failing cluster."""
    write_tests(tmp_path / "e2e", "test_e2e.py", FLAKY_ONCE)
    night = run_night(tmp_path, f"{PYTEST} {extra} e2e", rerun=rerun)
    assert night["code"] == 0, night["out"]
    end = phase_end(night)
    assert (end["passed"], end["flaky"], end["clusters"]) == (True, [FLAKY_ID], [])
    log = (night["dir"] / "session.md").read_text(encoding="utf-8")
    assert f"flaky (passed on rerun): {FLAKY_ID}" in log
    assert "failing cluster" not in log
    md, html = reports(tmp_path)
    for text in (md, html):
        flaky = text[text.index("Flaky tests") :]
        assert "test_flaky_once" in flaky[:2000]
        assert "What still fails" not in text


def test_counts_show_every_pytest_category(tmp_path: Path) -> None:
    """xfailed and xpassed are shown beside passed in the suite line (session.md and the
    console) and in the report's timeline, zero categories left out."""
    write_tests(tmp_path / "e2e", "test_e2e.py", FLAKY_ONCE)
    night = run_night(tmp_path, f"{PYTEST} --reruns 1 e2e")
    assert {k: v for k, v in suite_ends(night)["full"]["counts"].items() if v} == {
        "passed": 2,
        "xfailed": 1,
        "xpassed": 1,
    }
    line = "suite api/e2e: 2 passed, 1 xfailed, 1 xpassed in"
    assert line in (night["dir"] / "session.md").read_text(encoding="utf-8")
    assert line in night["out"]
    md, html = reports(tmp_path)
    assert "100.0% (3/3): 2 passed, 1 xfailed, 1 xpassed" in md
    assert "100.0% (3/3): 2 passed, 1 xfailed, 1 xpassed" in html


ONE_BROKEN = """
def test_broken():
    assert 503 == 200, "payment backend returned 503"

def test_a():
    pass

def test_b():
    pass
"""


def test_users_junitxml_keeps_the_main_run_not_the_rerun(tmp_path: Path) -> None:
    """The rerun of the failed test writes deployloop's own file only: the user's --junitxml
    still holds the main run's three tests (item 14)."""
    write_tests(tmp_path / "e2e", "test_e2e.py", ONE_BROKEN)
    mine = tmp_path / "mine.xml"
    night = run_night(tmp_path, f"{PYTEST} --junitxml={mine} e2e", rerun=True)
    assert "rerun" in suite_ends(night)
    assert mine.read_text().count("<testcase ") == 3
    rerun = (night["dir"] / "1" / "e2e+rerun.xml").read_text()
    assert rerun.count("<testcase ") == 1 and 'name="test_broken"' in rerun


def test_users_junitxml_holds_the_merged_shards(tmp_path: Path) -> None:
    """Case p8: with shards = 3 the user's --junitxml (under a reports/ not yet there) is
    written once, after the merge: every test of the suite, scrubbed like every kept file."""
    token = "ghp_" + "Ab12" * 9
    tests = ONE_BROKEN.replace('"payment backend returned 503"', f'"token {token} refused"')
    write_tests(tmp_path / "e2e", "test_e2e.py", tests)
    night = run_night(tmp_path, f"{PYTEST} --junitxml=reports/user.xml e2e", shards=3)
    assert {"shard-1", "shard-2", "shard-3", "full"} <= set(suite_ends(night))
    mine = (tmp_path / "reports" / "user.xml").read_text()
    assert mine.count("<testcase ") == 3 and 'name="test_broken"' in mine
    assert "token " in mine and token not in mine
    assert not list(night["dir"].glob("1/*.user-junit"))


@pytest.mark.parametrize(
    ("line", "drops"),
    [
        ("cd . && PYTEST_ADDOPTS='--junitxml=r.xml' python -m pytest e2e", True),
        ("export PYTEST_ADDOPTS=-x; pytest e2e", True),
        ("env PYTEST_ADDOPTS=-x pytest e2e", True),
        ("sh -c 'PYTEST_ADDOPTS=-x pytest e2e'", True),
        ('PYTEST_ADDOPTS="$PYTEST_ADDOPTS -x" pytest e2e', False),
        ("pytest e2e", False),
        ("MY_PYTEST_ADDOPTS=-x pytest e2e", False),
    ],
)
def test_a_run_line_setting_pytest_addopts_is_recognised(line: str, drops: bool) -> None:
    """A line that assigns PYTEST_ADDOPTS without keeping $PYTEST_ADDOPTS drops deployloop's."""
    assert drops_addopts(line) is drops


def test_pytest_addopts_in_the_run_line_is_warned_of_and_explained(tmp_path: Path) -> None:
    """PYTEST_ADDOPTS set inside the run line: validate warns at the run line (exit 0), and
    the run's harness error says to move it into the suite's env = {...}."""
    write_tests(tmp_path / "e2e", "test_e2e.py", ONE_BROKEN)
    line = f"cd . && PYTEST_ADDOPTS='--junitxml=reports/x.xml' {PYTEST} e2e"
    night = run_night(tmp_path, line)
    error = suite_ends(night)["full"]["harness_error"]
    assert error.startswith("no JUnit file written") and "env = { PYTEST_ADDOPTS" in error
    checked = cli("validate", cwd=tmp_path)
    text = (tmp_path / "deployloop.toml").read_text().splitlines()
    run_line = next(n for n, row in enumerate(text, 1) if row.strip().startswith("run ="))
    assert checked.returncode == 0, checked.stderr
    where = f"deployloop.toml:{run_line}: phase[0].suite[0].run: warning: the run line sets "
    assert f"{where}PYTEST_ADDOPTS" in checked.stdout
