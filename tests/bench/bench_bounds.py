"""Bounded by design (issue 19): what a night may grow by, and what a huge JUnit file costs.

``state_mb_per_iteration_64k``: state.db growth per iteration of a 64,000-test suite, all
passing (packaging's own suite is this size), saved as the loop saves it; a 100-iteration night
grows by 100 times this. ``big_junit_peak_rss_mb``: peak RSS of ``run --once`` on two suites
whose fake runner just writes its JUnit file: one with a 1 GB ``<system-out>``, one with
100,000 distinct failures. ``big_junit_kept_mb``: the files that run left on disk (session dir
and state). Every file is generated on the fly in a temporary directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from deployloop.junit import read_cases
from deployloop.models import SuiteRun
from deployloop.state import Store
from tests.bench.common import REPO, bench_env

GOALS = {
    "state_mb_per_iteration_64k": ("<=", 3.0),
    "big_junit_peak_rss_mb": ("<=", 150.0),
    "big_junit_kept_mb": ("<=", 80.0),
}

TESTS_64K = 64_000
ITERATIONS = 5
MB = 1 << 20

# The fake runners: stdlib Python that streams the JUnit file out block by block.
BIG_OUTPUT = """
import sys
block = ("x" * 1023 + "\\n") * 1024
with open(sys.argv[1], "w") as out:
    out.write('<testsuite name="big" tests="1"><testcase classname="t" name="test_ok"/>')
    out.write("<system-out>")
    for _ in range(1024):
        out.write(block)
    out.write("</system-out></testsuite>")
"""
MANY_FAILURES = """
import sys
with open(sys.argv[1], "w") as out:
    out.write('<testsuite name="many" tests="100000" failures="100000">')
    for n in range(100000):
        out.write(
            f'<testcase classname="tests.test_m{n // 100}" name="test_{n}">'
            f'<failure message="distinct failure {n} {n * 7919:x}">Traceback\\n'
            f'  File "t.py", line {n}\\nE{n}Error: distinct failure {n}</failure></testcase>'
        )
    out.write("</testsuite>")
"""


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-bounds-") as tmp:
        root = Path(tmp)
        state = _state_per_iteration(root / "state64k")
        rss, kept = _big_junit_run(root / "big")
    return {
        "state_mb_per_iteration_64k": state,
        "big_junit_peak_rss_mb": rss,
        "big_junit_kept_mb": kept,
    }


def _junit_64k(path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as out:
        out.write('<testsuite name="pytest" tests="64000">')
        for n in range(TESTS_64K):
            module = f"tests/test_module_{n // 400}.py"
            out.write(
                f'<testcase classname="tests.test_module_{n // 400}.TestCase{n % 7}" '
                f'name="test_case_{n}[param-{n % 13}]" file="{module}" line="{n % 900}" '
                f'time="0.{n % 997:03d}"/>'
            )
        out.write("</testsuite>")
    return path


def _state_per_iteration(directory: Path) -> float:
    """MB state.db grows per iteration of a 64k-test suite (after a WAL checkpoint)."""
    directory.mkdir(parents=True)
    cases = tuple(read_cases(_junit_64k(directory / "junit.xml")))
    run = SuiteRun("unit", "packaging", cases, 120.0, 0, version="v1")
    store = Store(directory / "state")
    try:
        store.save_run("s", 1, "full", run)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = store.size_mb()
        for n in range(2, ITERATIONS + 2):
            store.save_run("s", n, "full", run)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return (store.size_mb() - before) / ITERATIONS
    finally:
        store.close()


def _big_junit_run(directory: Path) -> tuple[float, float]:
    """Peak RSS (MB) of ``run --once`` over the two big suites, and MB it kept on disk."""
    directory.mkdir(parents=True)
    suites = []
    for name, source in (("big-output", BIG_OUTPUT), ("many-failures", MANY_FAILURES)):
        (directory / f"{name}.py").write_text(source, encoding="utf-8")
        suites.append(
            f'[[phase.suite]]\nname = "{name}"\n'
            f"run = '{sys.executable} {directory / name}.py {directory / name}.xml'\n"
            f'junit = "{directory / name}.xml"\n'
        )
    config = (
        '[session]\nname = "bounds"\n[target]\nbase_url = "http://127.0.0.1:9"\n'
        '[[phase]]\nname = "all"\n' + "".join(suites)
    )
    (directory / "deployloop.toml").write_text(config, encoding="utf-8")
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURED_RUN, str(directory / "deployloop.toml")],
        cwd=REPO,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if not measured.stdout.strip():
        raise RuntimeError(f"big JUnit run failed: {measured.stderr[-2000:]}")
    rss = float(json.loads(measured.stdout.strip().splitlines()[-1])["rss_mb"])
    logs = directory / "logs"
    kept = sum(p.stat().st_size for p in logs.rglob("*") if p.is_file()) / MB
    return rss, kept


# deployloop's own peak in a process of its own: VmHWM counts this process alone, not the fake
# runners (its children) nor the bench that forked it.
_MEASURED_RUN = """
import json, sys
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's)
    with open("/proc/self/status") as status:
        line = next(l for l in status if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
from typer.testing import CliRunner
from deployloop.cli import app
result = CliRunner().invoke(app, ["run", "--once", "-c", sys.argv[1]])
print(json.dumps({"rss_mb": peak_mb(),
                  "exit": result.exit_code}))
"""
