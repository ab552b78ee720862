"""Scrubbing a 64 MB suite log with secrets sprinkled, against reading its lines in plain Python.

Both sides run in this process on the same file (warm in the page cache), median of RUNS each,
in CPU time. The scrub is ``scrub_file`` (read, scan, write a masked copy, replace): what the
next start does to a log a killed run left, and what the streaming writer does chunk by chunk.
``redact_text_ratio`` (no goal) is ``Redactor.redact`` on the whole log as one str.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deployloop.redact import Redactor
from deployloop.scrub import scrub_file

GOALS = {"redact_ratio": ("<=", 3.0)}

SIZE = 64_000_000
RUNS = 3
KNOWN = ("staging-db-pass-7731", "Bearer-env-token-2f9c")
SECRETS = (
    "ghp_" + "A1b2" * 9,
    "postgres://app:pw4Db@db.internal/orders",
    "password=hunter2x",
    '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG"',
    "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
    "sk_live_" + "a1" * 12,
    KNOWN[0],
)
LINES = (
    "tests/e2e/test_mod{m}.py::TestFlow::test_case_{i}[variant-{v}] PASSED [ {p:3d}%]\n",
    "2024-05-01 12:00:{s:02d},123 INFO agent.client: sent start_agent #{i} to "
    "wss://staging.example.com/ws elapsed=0.{p:03d}s\n",
    "E       AssertionError: expected status 200, got 503 for request {i:08x}\n",
)


def write_log(path: Path, size: int = SIZE, seed: int = 5) -> None:
    """Pytest-like output; one line in 500 carries a secret of one of the issue's kinds."""
    rnd = random.Random(seed)
    written, i = 0, 0
    with path.open("w", encoding="utf-8") as out:
        while written < size:
            if rnd.random() < 0.002:
                line = f"E   login failed: {rnd.choice(SECRETS)} (attempt {i})\n"
            else:
                line = rnd.choice(LINES).format(m=i % 50, i=i, v=i % 13, p=i % 100, s=i % 60)
            out.write(line)
            written += len(line)
            i += 1


def read_lines(path: Path) -> None:
    with path.open(encoding="utf-8") as handle:
        for _ in handle:
            pass


def median_seconds(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.process_time()
        action()
        times.append(time.process_time() - started)
    return statistics.median(times)


def median_scrub_seconds(original: Path, work: Path, redactor: Redactor) -> float:
    """CPU seconds of ``scrub_file`` alone, median of RUNS: each run gets a fresh copy of the
    log first, untimed (subtracting a separately timed copy once gave a negative figure)."""
    times = []
    for _ in range(RUNS):
        work.write_bytes(original.read_bytes())
        started = time.process_time()
        scrub_file(work, redactor)
        times.append(time.process_time() - started)
    return statistics.median(times)


def measure() -> dict[str, float]:
    redactor = Redactor(KNOWN)
    with tempfile.TemporaryDirectory() as tmp:
        original, work = Path(tmp) / "suite.log", Path(tmp) / "work.log"
        write_log(original)

        read = median_seconds(lambda: read_lines(original))
        scrubbed = median_scrub_seconds(original, work, redactor)
        text = original.read_text(encoding="utf-8")
        redacted = median_seconds(lambda: redactor.redact(text))
        return {
            "redact_s": scrubbed,
            "redact_read_lines_s": read,
            "redact_ratio": scrubbed / read,
            "redact_text_ratio": redacted / read,
            "redact_file_mb": original.stat().st_size / 1e6,
        }
