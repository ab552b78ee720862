"""Shared by the loop's benches: a generated pytest suite, interleaved timing, fresh processes.

These machines are noisy, so subjects are timed in alternating order round after round and
compared by median: a burst of load from a neighbour then hits every subject alike.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUG_FLAG = "bug.flag"  # present in the suite directory: staging still carries the bug
PER_FILE = 100

_HEADER = """\
import os

# Read once per module, as an e2e suite reads its target: staging has the bug or it has not.
BUG = os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "{flag}"))
"""
# Every test asks staging once (an e2e test touches its target at least that much): an autouse
# fixture, so the generated tests stay as they are. The suite's conftest.py; $STAGING_URL is
# the target's base URL.
REQUEST_CONFTEST = """\
import os
import urllib.request

import pytest


@pytest.fixture(autouse=True)
def _touch_staging():
    with urllib.request.urlopen(os.environ["STAGING_URL"] + "/health", timeout=30) as reply:
        reply.read()
"""
_PASSING = "\n\ndef test_{f}_{i}():\n    assert {i} + 1 == {j}\n"
_FAILING = (
    "\n\ndef test_{f}_{i}():\n"
    '    assert not BUG, "ConnectionClosedError: server closed with 1011 (internal error)"\n'
)


def write_suite(directory: Path, tests: int = 1000, failing: Collection[int] = ()) -> list[str]:
    """``tests`` quick tests, ``PER_FILE`` to a module; those in ``failing`` fail while the
    bug flag exists. Returns every node id, relative to ``directory`` (pytest's rootdir)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    ids = []
    for f in range((tests + PER_FILE - 1) // PER_FILE):
        body = [_HEADER.format(flag=BUG_FLAG)]
        for i in range(f * PER_FILE, min(tests, (f + 1) * PER_FILE)):
            template = _FAILING if i in failing else _PASSING
            body.append(template.format(f=f, i=i, j=i + 1))
            ids.append(f"test_mod{f}.py::test_{f}_{i}")
        (directory / f"test_mod{f}.py").write_text("".join(body), encoding="utf-8")
    return ids


def set_bug(directory: Path, on: bool) -> None:
    """Deploy the bug (on) or the fix (off) to the generated suite's 'staging'."""
    flag = directory / BUG_FLAG
    if on:
        flag.touch()
    else:
        flag.unlink(missing_ok=True)


def bench_env() -> dict[str, str]:
    """This environment, minus what would skew a run: deployloop's own variables, and
    PYTHONDONTWRITEBYTECODE, which stops pytest caching its assertion rewrites so that every
    run re-parses every test module (as in an ordinary checkout, the cache is on)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DEPLOYLOOP_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def pytest_command() -> list[str]:
    """The suite's runner: this interpreter's pytest, without a cache written between runs."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def interleaved(
    subjects: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall seconds of each subject per round; the order flips every round (ABC, CBA, ...)
    so neither drift in load nor a warm cache left by the one before favours a subject."""
    names = list(subjects)
    for _ in range(warmup):
        for name in names:
            subjects[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].append(timed(subjects[name]))
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def paired_ratio(subject: Sequence[float], baseline: Sequence[float]) -> float:
    """Median of per-round ratios: each round's pair ran back to back under the same load."""
    return median([s / b for s, b in zip(subject, baseline, strict=True)])


def run_quiet(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    ok: Collection[int] = (0,),
) -> None:
    """Run a command to completion, output discarded; an exit code not in ``ok`` (a run that
    may fail its tests allows 1, never a harness error) is a broken bench."""
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
        check=False,
    )
    if done.returncode not in ok:
        raise RuntimeError(f"{argv[:4]} exited {done.returncode}: {done.stderr[-2000:]!r}")


def fresh_process_json(module: str, function: str, *args: str, timeout: float = 300) -> object:
    """Call ``module.function(*args)`` in a fresh interpreter; it prints one JSON document.

    Memory figures need a process of their own: the harness's heap says nothing about them.
    """
    code = f"import sys; from {module} import {function}; {function}(*sys.argv[1:])"
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module}.{function} exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_mb() -> float:
    """This process's resident set size now, in MiB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20
