"""Reading a 100,000-testcase JUnit file: time against junitparser, and peak memory.

Both sides are timed in the same run on the same file, median of RUNS each, in CPU time
(``time.process_time``): both are single-threaded, and CPU time is what stays comparable when
other work shares this 2-core machine. To compare equal
work, junitparser is asked for the facts deployloop's reader produces (name, classname, time,
each result's type, message and text); ``parse_ratio_vs_junitparser_bare`` also reports the
ratio against merely touching ``case.result``. Peak RSS is measured in a fresh interpreter:
``ru_maxrss`` after the read minus ``ru_maxrss`` after the imports.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

GOALS = {"parse_ratio_vs_junitparser": ("<=", 0.5), "parse_peak_rss_mb": ("<=", 100)}

CASES = 100_000
PER_SUITE = 250
RUNS = 5

FAILURE = """
      <failure message="ConnectionClosedError: server closed with 1011 (internal error) \
request {k:08x} at 10.0.{a}.{b}:8443">def test_agent_flow(client):
        with client.ws("/ws") as ws:
            ws.send({{"type": "start_agent", "payload": {{"user_request": "ping {k}"}}}})
&gt;           event = ws.recv(timeout=30)
E           websockets.exceptions.ConnectionClosedError: server closed with 1011 (internal error)
E           request {k:08x} at 10.0.{a}.{b}:8443

tests/e2e/test_mod{s}.py:{line}: ConnectionClosedError</failure>
      <system-out>connecting to wss://staging.example.com/ws
sent start_agent #{k}
</system-out>"""
SKIPPED = (
    '\n      <skipped type="pytest.skip" message="needs flag">'
    "tests/e2e/x.py:{line}: needs flag</skipped>"
)


def write_report(path: Path, cases: int = CASES, seed: int = 7) -> None:
    """A pytest-like report: ~5 % failures with multi-line details and output, ~3 % skipped."""
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="pytest tests">\n')
        for s in range(cases // PER_SUITE):
            out.write(f'  <testsuite name="e2e-{s}" tests="{PER_SUITE}" time="100.0">\n')
            for i in range(PER_SUITE):
                k = s * PER_SUITE + i
                attrs = (
                    f'classname="tests.e2e.test_mod{s}.TestFlow{i % 5}" '
                    f'name="test_case_{k}[variant-{k % 13}]" file="tests/e2e/test_mod{s}.py" '
                    f'line="{i * 4}" time="{rnd.expovariate(2.0):.3f}"'
                )
                roll = rnd.random()
                if roll < 0.05:
                    body = FAILURE.format(k=k, a=k % 250, b=k % 7, s=s, line=i * 4)
                elif roll < 0.08:
                    body = SKIPPED.format(line=i * 4)
                else:
                    out.write(f"    <testcase {attrs}/>\n")
                    continue
                out.write(f"    <testcase {attrs}>{body}\n    </testcase>\n")
            out.write("  </testsuite>\n")
        out.write("</testsuites>\n")


def read_with_deployloop(path: Path) -> int:
    from deployloop.junit import read_cases
    from deployloop.summary import summarize

    cases = read_cases(path)
    summarize(cases)
    return len(cases)


def read_with_junitparser(path: Path) -> int:
    """The same facts deployloop extracts, from junitparser's objects."""
    from junitparser import JUnitXml

    facts = []
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            results = [(r.type, r.message, r.text) for r in case.result]
            facts.append((case.name, case.classname, case.time, results))
    return len(facts)


def read_with_junitparser_bare(path: Path) -> int:
    from junitparser import JUnitXml

    count = 0
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            case.result  # noqa: B018 - touching the results is the work measured
            count += 1
    return count


def median_seconds(read: Callable[[Path], int], path: Path) -> float:
    times = []
    for _ in range(RUNS):
        started = time.process_time()
        assert read(path) == CASES
        times.append(time.process_time() - started)
    return statistics.median(times)


# VmHWM, not ru_maxrss: the kernel carries ru_maxrss over from the parent across fork and
# exec, so a child of this (by then large) process would report the parent's peak.
PEAK_SCRIPT = """
import json, re, resource, sys
from pathlib import Path
from deployloop.junit import iter_cases, read_cases
from deployloop.summary import summarize

def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return int(re.search(r"VmHWM:\\s+(\\d+)", status.read()).group(1))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

base = peak_kib()
if sys.argv[2] == "list":
    n = summarize(read_cases(Path(sys.argv[1]))).tests
else:
    n = summarize(iter_cases(Path(sys.argv[1]))).tests
print(json.dumps({"cases": n, "kib": peak_kib() - base}))
"""


def peak_rss_mb(path: Path, mode: str) -> float:
    """Peak RSS growth, in MB, of one read in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(path), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(done.stdout)
    assert figures["cases"] == CASES
    return float(figures["kib"]) / 1024


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.xml"
        write_report(path)
        ours = median_seconds(read_with_deployloop, path)
        theirs = median_seconds(read_with_junitparser, path)
        bare = median_seconds(read_with_junitparser_bare, path)
        return {
            "parse_s": ours,
            "parse_junitparser_s": theirs,
            "parse_ratio_vs_junitparser": ours / theirs,
            "parse_ratio_vs_junitparser_bare": ours / bare,
            "parse_peak_rss_mb": peak_rss_mb(path, "list"),
            "parse_stream_peak_rss_mb": peak_rss_mb(path, "stream"),
            "parse_file_mb": path.stat().st_size / 1e6,
        }
