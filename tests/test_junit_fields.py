"""junit_fields.parse_time: grouped thousands in every locale's form, both decimal marks, units."""

from __future__ import annotations

import pytest

from deployloop.junit_fields import parse_time

NBSP, NNBSP, THIN = "\u00a0", "\u202f", "\u2009"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        # grouped by a space (plain, no-break, narrow no-break, thin), decimal comma or point
        ("1 234,5", 1234.5),
        (f"1{NBSP}234,5", 1234.5),
        (f"1{NNBSP}234,5", 1234.5),
        (f"1{THIN}234,5", 1234.5),
        ("1 234.5", 1234.5),
        ("12 345 678,25", 12345678.25),
        # Swiss: apostrophe (ASCII or typographic) groups, point decimal
        ("1'234.5", 1234.5),
        ("1\u2019234.5", 1234.5),
        ("1'234'567.5", 1234567.5),
        # units after either convention
        ("1 234,5ms", 1.2345),
        ("1 234,5 ms", 1.2345),
        ("1'234.5ms", 1.2345),
        ("1 234,5s", 1234.5),
        ("1'234.5 s", 1234.5),
        ("1 234,5m", 74070.0),
        ("1'234.5m", 74070.0),
        ("2m 3,5s", 123.5),
        ("1.234,5 ms", 1.2345),
        ("1,234.5ms", 1.2345),
        # unreadable: unknown, never 0
        ("1 23,5", None),
        ("1 2345", None),
        ("1'23", None),
        ("1 234 5", None),
        ("'1234", None),
        ("1 234 parsecs", None),
    ],
)
def test_grouped_times_in_both_conventions_and_units(text: str, seconds: float | None) -> None:
    """Each form reads as the seconds a person means; a form that cannot be read is None."""
    assert parse_time(text) == (seconds if seconds is None else pytest.approx(seconds))
