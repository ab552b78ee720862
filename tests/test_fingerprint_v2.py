"""Fingerprint v2: the line that carries the error, per runner, masked; codes kept."""

from __future__ import annotations

import re

import pytest

from deployloop.errorline import Rule
from deployloop.fingerprint import explain, fingerprint, fingerprint_v2, normalize_v2
from deployloop.models import CaseResult, Outcome
from deployloop.testing import case


def failed(
    message: str = "",
    details: str = "",
    error_type: str = "",
    test_id: str = "tests/e2e/test_api.py::test_one",
) -> CaseResult:
    return case(test_id, Outcome.FAILED, message, error_type, details)


def go(line: str, name: str = "TestCheckout") -> CaseResult:
    body = f"=== RUN   {name}\n    checkout_test.go:42: {line}\n--- FAIL: {name} (0.35s)"
    return CaseResult(name, name, "github.com/acme/e2e", Outcome.FAILED, 0.3, "Failed", "", body)


def test_shape_and_version() -> None:
    """v2 prints are ``v2-`` plus 12 hex, and v1 is still computed exactly as before."""
    assert re.fullmatch(r"v2-[0-9a-f]{12}", fingerprint_v2(failed("boom")))
    assert fingerprint("AssertionError", "assert 500 == 200") == "v1-f1b1674f708e"


def test_go_placeholder_takes_the_reason_from_the_text() -> None:
    """message="Failed" (go-junit-report, gotestsum): the t.Errorf line decides, not "Failed"."""
    one = explain(go("POST /api/checkout: unexpected status 500"))
    other = explain(go("cart is empty after add"))
    assert one.rules == (Rule.PLACEHOLDER,)
    assert one.line == "POST /api/checkout: unexpected status 500"
    assert one.fingerprint != other.fingerprint
    assert fingerprint_v2(go("cart is empty after add", "TestOther")) == other.fingerprint


def test_go_log_lines_before_the_error_are_skipped() -> None:
    """Of a go test's lines, the first that reads as an error is taken, not a t.Logf line."""
    body = (
        "=== RUN   TestDeploy\n    deploy_test.go:10: creating namespace e2e-x\n"
        "    deploy_test.go:30: timed out waiting for pod\n--- FAIL: TestDeploy (9.00s)"
    )
    got = CaseResult("TestDeploy", "TestDeploy", "e2e", Outcome.FAILED, 9, "Failed", "", body)
    assert explain(got).line == "timed out waiting for pod"


def test_jest_suite_failures_split_by_reason() -> None:
    """jest-junit's "Test suite failed to run": a syntax error and a missing module differ."""
    syntax = failed(
        "Test suite failed to run",
        "Test suite failed to run\n\n  SyntaxError: /app/src/a.ts: Unexpected token (14:8)\n"
        "  at Parser._raise (node_modules/@babel/parser/lib/index.js:569:17)",
    )
    missing = failed(
        "Test suite failed to run",
        "Test suite failed to run\n\n  Cannot find module '@shop/x' from 'src/b.ts'\n",
    )
    assert explain(syntax).line == "SyntaxError: <path>: Unexpected token (<n>:<n>)"
    assert explain(missing).line == "Cannot find module '<str>' from '<str>'"


def test_playwright_message_naming_the_test() -> None:
    """Playwright <= 1.58's "file:line:col title" message: the error lines of the body decide."""
    body = (
        "  agents.spec.js:2:1 › list agents ──────\n\n    Error: expect(received).toBe(expected)"
        " // Object.is equality\n\n    Expected: 200\n    Received: 500\n\n  > 3 |   expect(x)\n"
    )
    one = failed("agents.spec.js:2:1 list agents", body, "FAILURE")
    two = failed("agents.spec.js:5:1 start agent", body.replace("2:1 › list agents", "5:1 › x"))
    assert explain(one).rules == (Rule.NAMES_TEST, Rule.MATCHER)
    assert explain(one).fingerprint == explain(two).fingerprint
    assert "Received: 500" in explain(one).line


def test_jest_matcher_line_takes_expected_and_received() -> None:
    """jest-junit's generic first line: a 500 and a 404 are two causes, two 500s one."""
    text = "Error: expect(received).toBe(expected) // Object.is equality\n\nExpected: 200\n"
    five = failed(text.splitlines()[0], text + "Received: 500\n    at Object.toBe (a.js:4:56)")
    four = failed(text.splitlines()[0], text + "Received: 404\n    at Object.toBe (b.js:9:9)")
    assert explain(five).rules == (Rule.MESSAGE, Rule.MATCHER)
    assert explain(five).fingerprint != explain(four).fingerprint


def test_xdist_crash_masks_the_tests_own_id() -> None:
    """ "worker 'gwN' crashed while running '<own id>'": one print for every crashed test."""

    def crash(worker: str, name: str) -> CaseResult:
        node = f"tests/test_media.py::{name}"
        text = f"worker '{worker}' crashed while running '{node}'"
        return case(node, Outcome.ERROR, f'failed on setup with "{text}"', "", text)

    prints = {fingerprint_v2(crash(w, n)) for w, n in (("gw0", "test_a"), ("gw3", "test_bb"))}
    assert len(prints) == 1


def test_own_name_is_masked_unquoted() -> None:
    """The failing test's own name inside its message does not split the cause."""
    one = failed("test_upload_avatar: replica not ready", test_id="t.py::test_upload_avatar")
    two = failed("test_upload_banner: replica not ready", test_id="t.py::test_upload_banner")
    assert explain(one).line == "<test>: replica not ready"
    assert fingerprint_v2(one) == fingerprint_v2(two)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("pod web-7d9f8b6c5-x2kqp is Pending", "pod web-<pod> is Pending"),
        ("namespace e2e-tests-checkout-x2kqp gone", "namespace e2e-tests-checkout-<k8s> gone"),
        ("flags {'b': 1, 'a': 2}", "flags {'<str>': <n>, '<str>': <n>}"),
        ("got map[b:true a:false]", "got map[a:false b:true]"),
        ("request 3f2a9c81-1b2c-4d5e-8f90-0123456789ab failed", "request <uuid> failed"),
        ("mail to qa+run4821@example.com lost", "mail to <email> lost"),
        ("host api-12.staging.acme.internal down", "host <host> down"),
        (
            "GET https://api-3.acme.io:8443/api/orders failed",
            "GET https://<host>/api/orders failed",
        ),
        ("done in 1.23s and 450ms and 2m0s", "done in <dur> and <dur> and <dur>"),
        ("at 2025-03-01T02:00:00.123Z", "at <date>"),
        ("on Sat, 01 Mar 2025 02:00:00 GMT", "on <date>"),
        ("for 03/01/2025 and Mar 1, 2025", "for <date> and <date>"),
        ("timeout (/srv/e2e/test/a.spec.js)", "timeout (<path>)"),
        ("wrote /home/runner/work/e2e/out.json", "wrote <path>"),
        ("invalid name 'Fancy.Feature'", "invalid name '<str>'"),
        ('agent said "no tools available"', 'agent said "no tools available"'),
        ("peer 10.0.4.17:6379 refused", "peer <ip> refused"),
        ("object at 0x7f3a2b1c", "object at <hex>"),
        ("expected 3 items, got 5", "expected <n> items, got <n>"),
        ("test_v2.py and python3.12 stay", "test_v2.py and python3.12 stay"),
        ("request id req_8f7e6d5c4b3a2918 failed", "request id req_<id> failed"),
        ("job build-9fK2xQ7mZ queued", "job build-<id> queued"),
        ("trace sess_a1B2c3D4e5 lost", "trace sess_<id> lost"),
        ("namespace checkout-service stays", "namespace checkout-service stays"),
        (
            "text_embedding3 and checkout-v2service stay",
            "text_embedding3 and checkout-v2service stay",
        ),
    ],
)
def test_v2_masks(raw: str, masked: str) -> None:
    """Each kind of run noise is masked; words, file names and quoted sentences stay."""
    assert normalize_v2(raw) == masked


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("assert 500 == 200", "assert 404 == 200"),
        ("received 1011 (internal error)", "received 1006 (abnormal closure)"),
        ("renderer died with signal 9", "renderer died with signal 11"),
        ("seed returned non-zero exit status 3.", "seed returned non-zero exit status 2."),
        ("OSError: [Errno 28] No space left", "OSError: [Errno 13] No space left"),
        ("HTTP 503 from /health", "HTTP 502 from /health"),
        ("expected: <200> but was: <503>", "expected: <200> but was: <500>"),
    ],
)
def test_codes_are_causes(one: str, other: str) -> None:
    """HTTP status, close, signal, errno and exit codes are kept: they tell causes apart."""
    assert fingerprint_v2(failed(one)) != fingerprint_v2(failed(other))


def test_prefixed_random_ids_do_not_split_a_cause() -> None:
    """Request ids (``req_<hex>``) and trace ids differing per failure give one print."""
    one = "request id req_8f7e6d5c4b3a2918, trace 4bf92f3577b34da6a3ce929d0e0e4736: 502 from gw"
    other = "request id req_1a2b3c4d5e6f7081, trace 0af7651916cd43dd8448eb211c80319c: 502 from gw"
    assert fingerprint_v2(failed(one)) == fingerprint_v2(failed(other))


def test_bare_comparison_takes_the_exception_behind_it() -> None:
    """``assert 1 == 0`` with an OSError in the captured log: the OSError is the cause."""

    def click(message: str, source: str) -> CaseResult:
        details = (
            f"    def test_x(runner):\n>       {source}\nE       {message}\n\n"
            "tests/test_x.py:9: AssertionError\n--- Captured log call ---\n"
            "ERROR    shop.export:export.py:88 export failed\nTraceback (most recent call last):\n"
            '  File "/srv/e2e/src/export.py", line 85, in write\n'
            "OSError: [Errno 28] No space left on device: '/srv/e2e/out/a1.json'"
        )
        return failed(message, details, "AssertionError")

    one = explain(click("assert 1 == 0", "assert result.exit_code == 0"))
    two = explain(click("assert 'Done' in ''", "assert 'Done' in result.output"))
    assert one.rules == (Rule.MESSAGE, Rule.INNER_EXCEPTION)
    assert one.line == "OSError: [Errno 28] No space left on device: '<path>'"
    assert one.fingerprint == two.fingerprint


def test_bare_comparison_without_exception_takes_its_source() -> None:
    """No exception anywhere: the assertion's source expression, not its evaluated values."""
    details = (
        ">       assert len(items) == 5\nE       assert 3 == 5\n\ntests/t.py:3: AssertionError"
    )
    got = explain(failed("assert 3 == 5", details, "AssertionError"))
    assert got.rules == (Rule.MESSAGE, Rule.ASSERTION_SOURCE)
    assert got.line == "assert len(items) == <n>"


def test_empty_java_assertion_takes_the_logged_exception() -> None:
    """A bare ``java.lang.AssertionError``: the exception in its captured output decides."""
    body = (
        "java.lang.AssertionError\n\tat org.junit.Assert.fail(Assert.java:87)\n"
        "------- Stdout: -------\nWARN reservation rejected: LockTimeoutException: lock held"
    )
    got = explain(failed("java.lang.AssertionError", body, "java.lang.AssertionError"))
    assert got.line == "LockTimeoutException: lock held"


def test_spring_wrapper_takes_the_innermost_caused_by() -> None:
    """ "Failed to load ApplicationContext" hides the cause: the last ``Caused by:`` decides."""
    body = (
        "java.lang.IllegalStateException: Failed to load ApplicationContext\n\tat a.B(B.java:1)\n"
        "Caused by: org.x.BeanCreationException: Error creating bean\n"
        "Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed"
    )
    got = explain(failed("Failed to load ApplicationContext", body, "IllegalStateException"))
    assert got.rules == (Rule.MESSAGE, Rule.CAUSED_BY)
    assert got.line.startswith("org.postgresql.util.PSQLException: FATAL")


def test_traceback_message_takes_its_last_exception() -> None:
    """A message that is a whole traceback is read by its exception line, as in v1."""
    text = 'Traceback (most recent call last):\n  File "a.py", line 3\nValueError: bad input 7\n'
    got = explain(failed(text))
    assert (got.rules, got.line) == ((Rule.TRACEBACK,), "ValueError: bad input <n>")


def test_user_masks_still_apply() -> None:
    """Config ``mask`` regexes run first in v2 too; a broken one names itself."""
    one, two = failed("tenant acme-blue down"), failed("tenant acme-red down")
    assert fingerprint_v2(one, [r"acme-\w+"]) == fingerprint_v2(two, [r"acme-\w+"])
    assert fingerprint_v2(one) != fingerprint_v2(two)
    with pytest.raises(ValueError, match="bad fingerprint mask"):
        fingerprint_v2(one, ["("])


def test_huge_hostile_text_is_bounded() -> None:
    """A megabyte of text without newlines yields a short line, quickly."""
    got = explain(failed("Failed", "x" * 1_000_000 + " error"))
    assert len(got.line) <= 300
