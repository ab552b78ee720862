"""The JUnit reader: every flavour in the shared fixtures, every runner we know, hostile files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from deployloop import junit
from deployloop.errors import JUnitError
from deployloop.junit_fields import case_id, parse_time
from deployloop.models import CaseResult, Outcome

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "junit"
# Small reports written for these tests, one per runner's shape: the reader's tests run from the
# repository alone; the shared corpus above is an extra check where it is present.
OWN = Path(__file__).parent / "data" / "junit" / "own"
OWN_EXPECTED = {
    "go-junit-report.xml": (4, 2, 1, 0, 1),
    "jest-junit.xml": (4, 1, 2, 0, 1),
    "mocha-junit-reporter.xml": (4, 2, 1, 0, 1),
    "playwright.xml": (3, 2, 1, 0, 0),
    "pytest-xunit2.xml": (6, 3, 1, 1, 1),
    "surefire-separate-reruns.xml": (3, 2, 1, 0, 0),  # a rerun pass is flaky, two fails failed
    "traceback-in-message.xml": (3, 2, 1, 0, 0),
    "unittest-file-attribute.xml": (4, 1, 1, 1, 1),
}
OWN_RECORDS = {"surefire-separate-reruns.xml": 5}

# Counted by hand from the files (testcase elements and their failure/error/skipped children;
# commented-out testcases do not count): logical tests, passed, failed, errors, skipped.
# TestNG writes a retried test's failed attempts as skipped records before the last attempt's
# record, so pulsar's files hold fewer tests than records (RECORDS); pytest's xfail is xfailed.
EXPECTED = {
    "empty/java-junit.xml": (0, 0, 0, 0, 0),
    "empty/jest-junit-empty-testsuite.xml": (0, 0, 0, 0, 0),
    "empty/jest-junit.xml": (0, 0, 0, 0, 0),
    "empty/phpunit-empty.xml": (0, 0, 0, 0, 0),
    "external/java/TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml": (1, 0, 1, 0, 0),
    "external/java/empty_failures.xml": (3, 2, 1, 0, 0),
    "external/java/junit4-basic.xml": (6, 5, 1, 0, 0),
    "external/java/junit4-complete.xml": (8, 5, 1, 1, 1),
    "external/java/pulsar-test-report.xml": (797, 793, 1, 0, 3),
    "external/jest/jest-react-component-test-results.xml": (1, 1, 0, 0, 0),
    "external/jest/jest-test-results.xml": (4239, 4207, 2, 0, 30),
    "external/phpunit/junit-basic.xml": (9, 8, 1, 0, 0),
    "external/phpunit/phpcheckstyle-phpunit.xml": (30, 28, 2, 0, 0),
    "jest-junit-eslint.xml": (1, 1, 0, 0, 0),
    "jest-junit.xml": (6, 1, 4, 0, 1),
    "junit-with-message.xml": (1, 0, 1, 0, 0),
    "nette-tester/BootstrapFormRenderer-report.xml": (4, 4, 0, 0, 0),
    "nette-tester/tester-v1.7-report.xml": (65, 61, 1, 0, 3),
    "phpunit/phpunit-paths.xml": (6, 0, 6, 0, 0),
    "phpunit/phpunit.xml": (12, 10, 2, 0, 0),
    "python-xunit-pytest.xml": (10, 6, 2, 0, 1),
    "python-xunit-unittest.xml": (8, 4, 1, 1, 2),
    "swift-xunit.xml": (3, 2, 1, 0, 0),
    "test-errors/jest/jest-test-results.xml": (2, 0, 0, 2, 0),
}

RECORDS = {
    "external/java/TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml": 2,
    "external/java/pulsar-test-report.xml": 808,
}

# (directory, hand counts, record counts): ours always, the shared corpus when present.
CORPORA = [(OWN, OWN_EXPECTED, OWN_RECORDS)] + (
    [(FIXTURES, EXPECTED, RECORDS)] if FIXTURES.is_dir() else []
)
COUNTED = [
    pytest.param(directory / name, expected, records.get(name, expected[0]), id=name)
    for directory, table, records in CORPORA
    for name, expected in sorted(table.items())
]


def counts(cases: list[CaseResult]) -> tuple[int, int, int, int, int]:
    tally = Counter(case.outcome for case in cases)
    return (
        len(cases),
        tally[Outcome.PASSED],
        tally[Outcome.FAILED],
        tally[Outcome.ERROR],
        tally[Outcome.SKIPPED],
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def by_name(cases: list[CaseResult]) -> dict[str, CaseResult]:
    return {case.name: case for case in cases}


# --- the shared fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected", "records"), COUNTED)
def test_fixture_counts(path: Path, expected: tuple[int, int, int, int, int], records: int) -> None:
    """Each report gives exactly the hand-counted tests, passed, failed, errors, skipped."""
    cases = junit.read_cases(path)
    assert counts(cases) == expected
    assert sum(c.records for c in cases) == records


def test_every_fixture_is_counted() -> None:
    """No report file escapes the tables above: a new one must get its hand count."""
    for directory, table, _ in CORPORA:
        on_disk = {p.relative_to(directory).as_posix() for p in directory.rglob("*.xml")}
        assert on_disk == set(table)


def test_collect_files_finds_fixtures_recursively_sorted() -> None:
    """A directory expands to all of its *.xml files, recursively, in sorted order."""
    for directory, table, _ in CORPORA:
        assert junit.collect_files([directory]) == sorted(directory / name for name in table)


def test_pytest_fixture_ids_types_and_messages() -> None:
    """pytest's xunit2 output gives node ids, and error types read from the details."""
    cases = by_name(junit.read_cases(OWN / "pytest-xunit2.xml"))
    assert cases["test_parameterized[param1]"].id == "tests/test_lib.py::test_parameterized[param1]"
    assert cases["test_always_fail"].error_type == "AssertionError"
    assert cases["test_always_fail"].message == "assert False"
    assert "tests/test_lib.py:25: AssertionError" in cases["test_always_fail"].details
    assert cases["test_error"].error_type == "Exception"
    assert cases["test_always_skip"].message == "skipped"
    assert cases["test_with_record_xml_attribute"].id == (
        "custom_classname::test_with_record_xml_attribute"
    )


def test_unittest_fixture_uses_file_attribute() -> None:
    """With a ``file`` attribute the id is built on it; ``line`` is kept as an int."""
    cases = by_name(junit.read_cases(OWN / "unittest-file-attribute.xml"))
    fail = cases["test_always_fail"]
    assert fail.id == "tests/test_lib.py::TestAcme::test_always_fail"
    assert (fail.file, fail.line, fail.error_type) == ("tests/test_lib.py", 23, "AssertionError")
    assert cases["test_error"].outcome is Outcome.ERROR


def test_jest_message_comes_from_the_text_when_no_attribute() -> None:
    """jest-junit writes no message attribute: the first line of the text stands in."""
    cases = by_name(junit.read_cases(OWN / "jest-junit.xml"))
    failing = cases["Failing test"]
    assert failing.id == "Test 1 › Test 1.1::Failing test"
    assert failing.message == "Error: expect(received).toBeTruthy()"
    assert failing.error_type == "Error"
    assert cases["Timeout test"].message.startswith('thrown: "Exceeded timeout')
    assert failing.duration_s == pytest.approx(0.002)


def test_traceback_in_message_gives_its_exception_type() -> None:
    """A Python traceback in the message attribute yields the exception on its last line."""
    (failed,) = [c for c in junit.read_cases(OWN / "traceback-in-message.xml") if c.broken]
    assert failed.error_type == "AssertionError"
    assert failed.id == "my_package.TestFoo::test_other_case"


# --- runner flavours, generated ------------------------------------------------------------


def test_surefire_flaky_and_rerun_elements(tmp_path: Path) -> None:
    """A flakyFailure in a passing testcase stays passed; a failure with reruns stays failed."""
    path = write(
        tmp_path,
        "TEST-com.acme.AppTest.xml",
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuite name="com.acme.AppTest" tests="5" failures="1" errors="1" skipped="1"
                   time="1,234.5">
          <properties><property name="java.version" value="17"/></properties>
          <testcase name="flaky" classname="com.acme.AppTest" time="0.2">
            <flakyFailure message="expected 1" type="java.lang.AssertionError">
              <stackTrace>java.lang.AssertionError: expected 1</stackTrace>
              <system-out>first try</system-out>
            </flakyFailure>
          </testcase>
          <testcase name="flakyErr" classname="com.acme.AppTest" time="0.1">
            <flakyError message="boom" type="java.lang.IllegalStateException"/>
          </testcase>
          <testcase name="broken" classname="com.acme.AppTest" time="1,234.5">
            <failure message="expected 2" type="java.lang.AssertionError">at App.java:3</failure>
            <rerunFailure message="expected 2" type="java.lang.AssertionError">
              <stackTrace>at App.java:3</stackTrace>
            </rerunFailure>
          </testcase>
          <testcase name="crashing" classname="com.acme.AppTest" time="0.3">
            <rerunError message="NPE" type="java.lang.NullPointerException"/>
          </testcase>
          <testcase name="ignored" classname="com.acme.AppTest" time="0">
            <skipped message="@Disabled"/>
          </testcase>
        </testsuite>
        """,
    )
    cases = junit.read_cases(path)
    assert counts(cases) == (5, 2, 1, 1, 1)
    named = by_name(cases)
    assert named["flaky"].message == ""
    broken = named["broken"]
    assert (broken.outcome, broken.error_type, broken.message) == (
        Outcome.FAILED,
        "java.lang.AssertionError",
        "expected 2",
    )
    assert broken.duration_s == 1234.5
    assert broken.id == "com.acme.AppTest::broken"
    assert named["crashing"].error_type == "java.lang.NullPointerException"
    assert named["ignored"].message == "@Disabled"


def test_gotestsum_output(tmp_path: Path) -> None:
    """gotestsum: package as classname, messages in the text, package-level failures."""
    path = write(
        tmp_path,
        "go.xml",
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites tests="4" failures="2" errors="0" time="0.512">
          <testsuite tests="4" failures="2" time="0.510" name="example.com/app/pkg"
                     timestamp="2024-05-01T10:00:00Z">
            <properties><property name="go.version" value="go1.22.2 linux/amd64"/></properties>
            <testcase classname="example.com/app/pkg" name="TestOK" time="0.000"/>
            <testcase classname="example.com/app/pkg" name="TestBad" time="0.010">
              <failure message="Failed" type="">=== RUN   TestBad
            bad_test.go:12: got 3, want 4
        --- FAIL: TestBad (0.01s)
        </failure>
            </testcase>
            <testcase classname="example.com/app/pkg" name="TestLater" time="0.000">
              <skipped
                message="=== RUN   TestLater&#xA;    later_test.go:9: not yet&#xA;--- SKIP"/>
            </testcase>
            <testcase classname="example.com/app/pkg" name="TestMain" time="0.000">
              <failure message="Failed" type="">=== RUN TestMain
        panic: runtime error [recovered]</failure>
            </testcase>
          </testsuite>
        </testsuites>
        """,
    )
    cases = by_name(junit.read_cases(path))
    assert counts(list(cases.values())) == (4, 1, 2, 0, 1)
    assert cases["TestBad"].id == "example.com/app/pkg::TestBad"
    assert "got 3, want 4" in cases["TestBad"].details
    assert cases["TestBad"].error_type == ""
    assert cases["TestLater"].message.startswith("=== RUN   TestLater\n")


def test_jest_junit_output(tmp_path: Path) -> None:
    """jest-junit: describe blocks as classname, stack traces as text, suite errors."""
    path = write(
        tmp_path,
        "junit.xml",
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="jest tests" tests="3" failures="1" errors="1" time="2.5">
          <testsuite name="cart" errors="0" failures="1" skipped="0"
                     timestamp="2024-01-01T00:00:00" time="1.2" tests="2">
            <testcase classname="cart › add" name="cart › add adds an item" time="0.013"/>
            <testcase classname="cart › add" name="cart › add rejects &lt;script&gt;" time="0.021">
              <failure>TypeError: Cannot read properties of undefined (reading &apos;id&apos;)
            at Object.&lt;anonymous&gt; (src/cart.test.ts:14:9)</failure>
            </testcase>
          </testsuite>
          <testsuite name="src/broken.test.ts" errors="1" failures="0" time="0" tests="0">
            <testcase classname="Test suite failed to run" name="src/broken.test.ts" time="0">
              <error>  ● Test suite failed to run

            Cannot find module './missing'</error>
            </testcase>
          </testsuite>
        </testsuites>
        """,
    )
    cases = by_name(junit.read_cases(path))
    assert counts(list(cases.values())) == (3, 1, 1, 1, 0)
    failing = cases["cart › add rejects <script>"]
    assert failing.error_type == "TypeError"
    assert failing.message == "TypeError: Cannot read properties of undefined (reading 'id')"
    assert cases["src/broken.test.ts"].message == "● Test suite failed to run"


def test_mocha_junit_reporter_output(tmp_path: Path) -> None:
    """mocha-junit-reporter: an empty Root Suite, CDATA stacks, a file attribute on the suite."""
    path = write(
        tmp_path,
        "mocha.xml",
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites name="Mocha Tests" time="0.0040" tests="3" failures="1">
          <testsuite name="Root Suite" timestamp="2024-02-02T10:00:00" tests="0" time="0.0000"
                     failures="0"/>
          <testsuite name="Array" timestamp="2024-02-02T10:00:00" tests="3"
                     file="/app/test/array.spec.js" time="0.0040" failures="1">
            <testcase name="Array #indexOf() returns -1 when absent" time="0.0010"
                      classname="returns -1 when absent"/>
            <testcase name="Array #indexOf() finds the index" time="0.0020"
                      classname="finds the index">
              <failure message="expected 0 to equal 1" type="AssertionError"><![CDATA[
        AssertionError: expected 0 to equal 1
            at Context.<anonymous> (test/array.spec.js:9:14)]]></failure>
            </testcase>
            <testcase name="Array #pending" time="0.0000" classname="pending"><skipped/></testcase>
          </testsuite>
        </testsuites>
        """,
    )
    cases = by_name(junit.read_cases(path))
    assert counts(list(cases.values())) == (3, 1, 1, 0, 1)
    failing = cases["Array #indexOf() finds the index"]
    assert failing.id == "finds the index::Array #indexOf() finds the index"
    assert "Context.<anonymous>" in failing.details


def test_bazel_generated_test_xml(tmp_path: Path) -> None:
    """Bazel's own test.xml: one testcase per target, suite-level output, an error element."""
    path = write(
        tmp_path,
        "test.xml",
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites>
        <testsuite name="//server:integration_test" tests="1" failures="0" errors="1">
        <testcase name="//server:integration_test" status="run" duration="12" time="12"
          ><error message="exited with error code 1"></error></testcase>
        <system-out>
        Generated test.log (if the file is not UTF-8, then this may be unreadable):
        <![CDATA[exec ${PAGER:-/usr/bin/less} "$0" || exit 1
        Executing tests from //server:integration_test
        FAILED: connection refused]]>
        </system-out>
        </testsuite>
        </testsuites>
        """,
    )
    (case,) = junit.read_cases(path)
    assert (case.id, case.outcome, case.message) == (
        "//server:integration_test",
        Outcome.ERROR,
        "exited with error code 1",
    )
    assert case.duration_s == 12.0


def test_nested_suites_missing_attributes_entities_and_unicode(tmp_path: Path) -> None:
    """Nested suites, a nameless testcase, entities and odd unicode all read cleanly."""
    path = write(
        tmp_path,
        "odd.xml",
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites>
          <testsuite name="outer">
            <testsuite name="inner">
              <testsuite name="innermost">
                <testcase name="ünïcødé ✓ 日本語 עברית e\u0301 🚀" classname="Ω.suite"/>
              </testsuite>
            </testsuite>
            <testcase/>
            <testcase name="a &amp; b &lt;c&gt; &#x2713; &#169;" time="">
              <failure message="x &quot;quoted&quot; &#10;second line"/>
            </testcase>
            <testcase name="bad time" time="soon"/>
          </testsuite>
        </testsuites>
        """,
    )
    cases = junit.read_cases(path)
    assert counts(cases) == (4, 3, 1, 0, 0)
    assert cases[0].id == "Ω.suite::ünïcødé ✓ 日本語 עברית e\u0301 🚀"
    assert (cases[1].id, cases[1].duration_s) == ("", None)
    assert cases[2].name == "a & b <c> ✓ ©"
    assert cases[2].message == 'x "quoted" \nsecond line'
    assert cases[3].duration_s is None


def test_testsuite_root_control_bytes_and_utf16(tmp_path: Path) -> None:
    """A bare <testsuite> root, ANSI escapes leaking into output, and a UTF-16 file all parse."""
    ansi = tmp_path / "ansi.xml"
    ansi.write_bytes(
        b'<testsuite name="s"><testcase name="t" time="0.5">'
        b"<failure>\x1b[31mAssertionError: red\x1b[0m</failure></testcase></testsuite>"
    )
    (case,) = junit.read_cases(ansi)
    assert case.message == "AssertionError: red"  # the whole escape goes, not only ESC
    wide = tmp_path / "wide.xml"
    declaration = '<?xml version="1.0" encoding="UTF-16"?>'
    wide.write_bytes(
        f'{declaration}<testsuite><testcase name="wide ✓"/></testsuite>'.encode("utf-16")
    )
    assert [c.name for c in junit.read_cases(wide)] == ["wide ✓"]


def test_empty_testsuites_is_zero_cases(tmp_path: Path) -> None:
    """A valid file with nothing in it is zero cases, not an error, at this level."""
    assert junit.read_cases(write(tmp_path, "e.xml", "<testsuites/>")) == []


def test_case_id_derivation() -> None:
    """pytest node ids from classname (+ file), anything else as classname::name."""
    assert case_id("tests.test_lib", "test_x", None) == "tests/test_lib.py::test_x"
    assert case_id("tests.test_lib.TestA", "test_x[1]", None) == (
        "tests/test_lib.py::TestA::test_x[1]"
    )
    assert case_id("tests.test_lib.TestA", "test_x", "tests/test_lib.py") == (
        "tests/test_lib.py::TestA::test_x"
    )
    assert case_id("pkg.sub.api_test.TestA.TestB", "test_y", None) == (
        "pkg/sub/api_test.py::TestA::TestB::test_y"
    )
    assert case_id("org.acme.FooTest", "testBar", None) == "org.acme.FooTest::testBar"
    assert case_id("tests.test_x.helper", "test_y", None) == "tests.test_x.helper::test_y"
    assert case_id("", "renders", None) == "renders"


def test_parse_time_is_tolerant() -> None:
    """Thousands commas, decimal commas and blanks give seconds; garbage is unknown (None)."""
    assert [parse_time(t) for t in ("1,234.5", "0,25", " 2 ", "", None, "x", "-1")] == [
        1234.5,
        0.25,
        2.0,
        None,
        None,
        None,
        None,
    ]


# --- files that must be refused ----------------------------------------------------------------

BAD_FILES = {
    "truncated.xml": (
        '<?xml version="1.0"?>\n<testsuites>\n<testsuite name="s">\n<testcase name="a"/>\n<testca',
        "truncated XML (no closing tag at line 5)",
    ),
    "cut.xml": ("<testsuites>\n<testsuite>\n<testcase/>\n", "truncated XML (no closing tag"),
    "empty.xml": ("", "empty file (0 bytes)"),
    "page.xml": (
        "<!DOCTYPE html>\n<html><head><title>502</title></head><body>Bad gateway</body></html>",
        "not a JUnit file (root element <html>)",
    ),
    "sloppy.xml": ("<!doctype html>\n<html><body><p>oops", "not a JUnit file (an HTML page)"),
    "text.xml": ("PASS all tests\n", "not XML (syntax error at line 1, column 0)"),
    "blank.xml": ("  \n", "not XML (no root element)"),
    "other.xml": ('<project name="x"/>', "not a JUnit file (root element <project>)"),
    "bomb.xml": (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        ' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n]>\n'
        '<testsuites><testsuite><testcase name="&lol2;"/></testsuite></testsuites>',
        "entity declarations refused",
    ),
    "xxe.xml": (
        '<?xml version="1.0"?>\n<!DOCTYPE t [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n'
        '<testsuites><testsuite><testcase name="&xxe;"/></testsuite></testsuites>',
        "external entity refused",
    ),
    "mismatch.xml": (
        "<testsuites><testsuite><testcase></testsuite></testsuites>",
        "malformed XML (mismatched tag",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_junit_error_naming_the_file(tmp_path: Path, name: str) -> None:
    """Each unreadable file raises JUnitError with the path and a short, specific problem."""
    content, problem = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(JUnitError) as caught:
        junit.read_cases(path)
    assert caught.value.path == str(path)
    assert caught.value.problem.startswith(problem)
    assert str(caught.value).startswith(f"{path}: ")
    assert "passwd" not in caught.value.problem or "root:" not in caught.value.problem


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    """A missing path and a directory without XML are JUnitErrors too."""
    with pytest.raises(JUnitError, match="cannot read"):
        junit.read_cases(tmp_path / "nope.xml")
    with pytest.raises(JUnitError, match="no such file or directory"):
        junit.collect_files([tmp_path / "nope"])
    (tmp_path / "logs").mkdir()
    with pytest.raises(JUnitError, match=r"no \*\.xml files"):
        junit.collect_files([tmp_path / "logs"])


def test_cases_stream_out_before_a_late_truncation(tmp_path: Path) -> None:
    """Tests are yielded suite by suite while parsing: a big file cut in its last suite gives
    the complete suites' tests, then fails (a suite's records are folded once it ends)."""
    suites = "".join(
        "<testsuite>"
        + "".join(
            f'<testcase classname="tests.test_big{s}" name="test_{i}" time="0.01"/>\n'
            for i in range(2000)
        )
        + "</testsuite>\n"
        for s in range(3)
    )
    path = tmp_path / "big.xml"
    path.write_text(f"<testsuites>{suites}<testsuite><testcase name='cut", encoding="utf-8")
    stream = junit.iter_cases(path)
    first = next(stream)
    assert first.id == "tests/test_big0.py::test_0"
    seen = [first]
    with pytest.raises(JUnitError, match="truncated"):
        seen.extend(stream)
    assert len(seen) == 6000


# --- a real pytest run ---------------------------------------------------------------------

GENERATED_TESTS = """
import pytest

def test_pass():
    pass

def test_fail():
    assert 1 == 2

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_error(broken):
    pass

@pytest.mark.skip(reason="not today")
def test_skip():
    pass

@pytest.mark.parametrize("value", [1, "a.b", "c d", 3.5])
def test_param(value):
    assert value != 3.5

class TestGroup:
    def test_method(self):
        pass

    @pytest.mark.parametrize("n", [0, 1])
    def test_method_param(self, n):
        if n:
            raise ValueError(f"bad n {n}")

    class TestNested:
        def test_deep(self):
            pass
"""

RECORDER = """
import json

IDS = []

def pytest_runtest_logreport(report):
    if report.nodeid not in IDS:
        IDS.append(report.nodeid)

def pytest_sessionfinish(session):
    with open("nodeids.json", "w") as out:
        json.dump(IDS, out)
"""


@pytest.mark.parametrize("family", ["xunit1", "xunit2"])
def test_real_pytest_run_node_ids(tmp_path: Path, family: str) -> None:
    """The reader rebuilds exactly the node ids pytest itself reported, in both xunit families."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_generated.py").write_text(GENERATED_TESTS, encoding="utf-8")
    (tmp_path / "conftest.py").write_text(RECORDER, encoding="utf-8")
    out = tmp_path / "report.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={out}",
            "-o",
            f"junit_family={family}",
            "tests",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    truth = json.loads((tmp_path / "nodeids.json").read_text())
    cases = junit.read_cases(out)
    assert [c.id for c in cases] == truth
    assert counts(cases) == (12, 7, 3, 1, 1)
    named = {c.id.split("::", 1)[1]: c for c in cases}
    assert named["test_fail"].error_type == "AssertionError"
    assert named["test_error"].outcome is Outcome.ERROR
    assert named["test_error"].error_type == "RuntimeError"
    assert named["TestGroup::test_method_param[1]"].error_type == "ValueError"
    assert named["TestGroup::test_method_param[1]"].message == "ValueError: bad n 1"
