"""deployloop's JUnit report (the run plugin's ``Report``) says what pytest's own writer says.

Its quick path writes a clean pass without pytest's ``LogXML`` machinery; every other test goes
through ``LogXML``. One real pytest run writes both files from the same reports: pytest's own
``--junitxml`` (xunit1) and deployloop's. Every testcase must match, in order, attributes and
times included, but for what deployloop adds on purpose: a broken test's output tail after pytest's
text, and the skipped element that marks an xpass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from deployloop.models import Outcome, RunEnd
from deployloop.plugin.deployloop_run import OUTPUT_HEADER, XPASS_MESSAGE
from deployloop.runner import JUNIT_ENV, PLUGIN_DIR, run_suite
from tests.helpers import python_pytest, write_tests
from tests.test_runner import make_job

# Every kind of report a test can give, beside clean passes with names that need escaping.
SUITE = """
import os
import time

import pytest


@pytest.fixture
def slow_setup():
    time.sleep(0.004)  # the time a testcase reports is its three phases', not the call's
    yield
    time.sleep(0.004)


class TestInAClass:
    def test_pass(self, slow_setup):
        time.sleep(0.004)


@pytest.mark.parametrize("value", ["a\\x07b", "ünï", "x[y]", "a::b", "1.5"])
def test_param(value):
    print("stdout of a pass")


def test_fails():
    print("printed before the failure")
    assert 1 == 0


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")


def test_setup_error(broken_setup):
    pass


def test_teardown_error_after_a_pass(broken_teardown):
    pass


def test_teardown_error_after_a_failure(broken_teardown):
    assert False


@pytest.fixture
def skipping():
    pytest.skip("no staging for this")


def test_skipped_in_setup(skipping):
    pass


@pytest.mark.skip(reason="marked")
def test_skip_marked():
    pass


def test_skip_inside():
    pytest.skip("inside")


@pytest.mark.xfail(reason="known", strict=True)
def test_xfail_strict_passes():
    pass


@pytest.mark.xfail(reason="known")
def test_xfail_fails():
    assert False


@pytest.mark.xfail(reason="fixed")
def test_xpass():
    pass


def test_property(record_property):
    record_property("ticket", "OPS-1")


def test_flaky_once():
    marker = os.path.join(os.environ["FLAG_DIR"], "tried")
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise AssertionError("first attempt fails")
"""


def _run(tmp_path: Path, *args: str, suite: str = SUITE) -> tuple[ET.Element, ET.Element]:
    """(pytest's own report, deployloop's) of one run of ``suite`` with ``args``."""
    (tmp_path / "test_kinds.py").write_text(suite, encoding="utf-8")
    (tmp_path / "flags").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(PLUGIN_DIR),
        JUNIT_ENV: str(tmp_path / "ours.xml"),
        "FLAG_DIR": str(tmp_path / "flags"),
    }
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    argv += ["-p", "deployloop_run", "-o", "junit_family=xunit1", "--junitxml=theirs.xml"]
    done = subprocess.run(
        [*argv, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return ET.parse(tmp_path / "theirs.xml").getroot(), ET.parse(tmp_path / "ours.xml").getroot()


def _comparable(case: ET.Element) -> tuple[object, ...]:
    """A testcase as comparable text: deployloop's additions taken off (the output tail after
    a failure's or error's text, the xpass mark)."""
    children = []
    for child in case:
        if child.tag == "skipped" and child.get("message") == XPASS_MESSAGE:
            continue
        text = (child.text or "").split(OUTPUT_HEADER)[0]
        children.append((child.tag, tuple(sorted(child.attrib.items())), text))
    return case.tag, tuple(sorted(case.attrib.items())), tuple(children)


def _cases(root: ET.Element) -> list[ET.Element]:
    return root.findall("./testsuite/testcase")


XDIST = ("-p", "xdist", "-n", "2")


@pytest.mark.parametrize("args", [(), XDIST], ids=["plain", "xdist"])
def test_deployloops_report_says_what_pytests_says(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Case by case and in pytest's order: a test is placed where its setup report came, as
    ``LogXML`` places it, however xdist's workers interleave their reports."""
    theirs, ours = _run(tmp_path, "-p", "rerunfailures", "--reruns", "1", *args)
    assert [_comparable(c) for c in _cases(ours)] == [_comparable(c) for c in _cases(theirs)]
    # pytest counts each result element: an xpass's mark is one more skipped, one more test
    marks = sum(c.get("message") == XPASS_MESSAGE for c in ours.iter("skipped"))
    counts = ("tests", "errors", "failures", "skipped")
    extra = {"tests": marks, "skipped": marks}
    mine = [int(ours[0].get(k, "")) for k in counts]
    assert mine == [int(theirs[0].get(k, "")) + extra.get(k, 0) for k in counts]


def test_deployloops_additions_are_there(tmp_path: Path) -> None:
    """What the comparison above takes off is really in deployloop's report."""
    theirs, ours = _run(tmp_path)
    assert len(_cases(ours)) == len(_cases(theirs)) > 0
    by_name = {c.get("name"): c for c in _cases(ours)}
    failure = by_name["test_fails"].find("failure")
    assert failure is not None and "printed before the failure" in (failure.text or "")
    xpass = by_name["test_xpass"].find("skipped")
    assert xpass is not None and xpass.get("message") == XPASS_MESSAGE


SUBTEST_IN_SETUP = """
import pytest


@pytest.fixture
def checked(subtests):
    with subtests.test(msg="checked while setting up"):
        pass
    yield


def test_uses(checked):
    pass


def test_plain():
    pass
"""


def test_a_subtest_before_its_tests_setup_report_is_one_testcase(tmp_path: Path) -> None:
    """pytest's subtests report from a fixture's setup before the setup report itself: that
    test is pytest's to write from then on, as one testcase, not held as a second one."""
    # pytest-rerunfailures (autoloaded here) fails a subtest in a fixture: not under test
    theirs, ours = _run(tmp_path, "-p", "no:rerunfailures", suite=SUBTEST_IN_SETUP)
    assert [c.get("name") for c in _cases(ours)] == ["test_uses", "test_plain"]
    assert [_comparable(c) for c in _cases(ours)] == [_comparable(c) for c in _cases(theirs)]


def test_a_test_cut_short_by_pytest_exit_is_no_pass(tmp_path: Path) -> None:
    """``pytest.exit`` in a test: pytest's own writer leaves a testcase with no name and no
    result, which reads as a pass; deployloop's report leaves it out, and the run is told
    as stopped early, never as passed."""
    suite = tmp_path / "suite"
    write_tests(suite, "pytest.ini", "[pytest]\n")
    write_tests(suite, "test_it.py", EXITS_MIDWAY)
    run = run_suite(make_job(tmp_path, python_pytest(str(suite))), threading.Event())
    assert [(c.id, c.outcome) for c in run.cases] == [("test_it.py::test_first", Outcome.PASSED)]
    assert run.ended is RunEnd.RUNNER_ERROR
    assert run.harness_error == "stopped early: 1 of 2 tests did not run"


EXITS_MIDWAY = """
import pytest


def test_first():
    pass


def test_staging_gone():
    pytest.exit("staging gone", returncode=0)
"""
