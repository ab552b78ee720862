"""Failure fingerprints: noise masked, one cluster per root cause, versioned and stable."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest

from deployloop.fingerprint import VERSION, fingerprint, first_meaningful_line, normalize


def ws_failure(i: int) -> str:
    return (
        f"server closed with 1011 (internal error) request {uuid.uuid4()} "
        f"at 10.0.{i}.{i + 5}:{8000 + i} after {i * 0.37:.2f}s "
        f"on 2024-05-0{i % 9 + 1}T0{i % 10}:1{i % 10}:00.{i:03d}Z"
    )


def test_twenty_noisy_messages_form_one_cluster() -> None:
    """Twenty failures differing only in uuid, address, port, timing and time share a print."""
    prints = {fingerprint("ConnectionClosedError", ws_failure(i)) for i in range(20)}
    assert len(prints) == 1


def test_other_type_or_message_is_another_cluster() -> None:
    """A different exception type, close code or wording gives a different fingerprint."""
    base = fingerprint("ConnectionClosedError", ws_failure(1))
    assert fingerprint("TimeoutError", ws_failure(1)) != base
    assert fingerprint("ConnectionClosedError", ws_failure(1).replace("1011", "1006")) != base
    assert fingerprint("ConnectionClosedError", "agent_completed event never arrived") != base


def test_shape_and_pinned_value() -> None:
    """Fingerprints are ``v1-`` plus 12 hex; this one is pinned: changing the scheme means v2."""
    value = fingerprint("AssertionError", "assert 500 == 200")
    assert re.fullmatch(r"v1-[0-9a-f]{12}", value)
    assert VERSION == "v1"
    scheme = hashlib.sha256(b"AssertionError\nassert <n> == <n>").hexdigest()[:12]
    assert value == f"v1-{scheme}" == "v1-f1b1674f708e"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("request 3f2a9c81-1b2c-4d5e-8f90-0123456789ab failed", "request <uuid> failed"),
        ("at 2024-05-01T03:04:05.123+02:00 and 03:04:05", "at <ts> and <ts>"),
        ("peer 192.168.10.20:8443 reset", "peer <ip> reset"),
        ("peer [::1]:8080 reset", "peer <ip> reset"),
        ("connect localhost:54321 refused", "connect localhost:<n> refused"),
        ("wrote /tmp/tmpab12cd/out.json", "wrote <tmp>"),
        ("wrote /var/folders/x1/T/tmp9/out.json", "wrote <tmp>"),
        (r"wrote C:\Users\me\AppData\Local\Temp\pytest-1\x.txt", "wrote <tmp>"),
        ("dir /home/ci/pytest-of-ci/pytest-42/test_a0/data", "dir <tmp>"),
        ("object at 0x7f3a2b1c", "object at <hex>"),
        ("commit 3f2a9c81d4e5b6a7 not found", "commit <hex> not found"),
        ("user 'u_8f3a2' not found", "user '<id>' not found"),
        ('event "agent_started" missing', 'event "agent_started" missing'),
        ("expected 3 items, got 5 in 1.25s", "expected <n> items, got <n> in <n>s"),
        ("HTTP 503 from /health", "HTTP 503 from /health"),
        ("status 404 for user", "status 404 for user"),
        ("exit code 3", "exit code 3"),
        ("test_x2 and v1 keep their digits", "test_x2 and v1 keep their digits"),
        ("  spaced   out\ttext ", "spaced out text"),
    ],
)
def test_normalize_masks(raw: str, masked: str) -> None:
    """Each kind of run-specific noise is masked; names and failure codes are kept."""
    assert normalize(raw) == masked


def test_extra_masks_apply_first() -> None:
    """User regexes mask what the built-ins would not, before the built-ins run."""
    assert normalize("tenant acme-blue job 7", extra_masks=[r"acme-\w+"]) == "tenant <*> job <n>"
    assert fingerprint("E", "tenant acme-blue", ["acme-\\w+"]) == fingerprint(
        "E", "tenant acme-red", ["acme-\\w+"]
    )
    assert fingerprint("E", "tenant acme-blue") != fingerprint("E", "tenant acme-red")


def test_bad_extra_mask_is_a_value_error() -> None:
    """A broken user regex is reported as such, naming the pattern."""
    with pytest.raises(ValueError, match=r"bad fingerprint mask '\('"):
        normalize("x", extra_masks=["("])


def test_first_meaningful_line() -> None:
    """Tracebacks give their exception line; bullets, pytest E prefixes and blanks are skipped."""
    traceback = 'Traceback (most recent call last):\n  File "a.py", line 3\nValueError: bad 1\n'
    assert first_meaningful_line(traceback) == "ValueError: bad 1"
    assert first_meaningful_line("\n  ● Test suite failed to run\n\nmore") == (
        "Test suite failed to run"
    )
    assert first_meaningful_line("E   assert 1 == 2\nE   more") == "assert 1 == 2"
    assert first_meaningful_line("---\n\nreal line") == "real line"
    assert first_meaningful_line("") == ""


def test_only_the_first_meaningful_line_counts() -> None:
    """Differing stack traces below the same first line do not split a cluster."""
    one = "Error: timeout waiting for agent_completed\n    at a.js:1:1\n    at b.js:2:2"
    two = "Error: timeout waiting for agent_completed\n    at c.js:9:9"
    assert fingerprint("Error", one) == fingerprint("Error", two)
