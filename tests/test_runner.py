"""The suite runner against real pytest subprocesses: every way a harness can break."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import psutil
import pytest

from deployloop import gates
from deployloop.config import PhaseConfig
from deployloop.models import Outcome, RunEnd, SuiteRun
from deployloop.plugin.deployloop_run import DIST_EACH
from deployloop.pytestline import is_pytest, runs_pytest
from deployloop.runner import JUNIT_ENV, PLUGIN_DIR, SAYS_CHARS, SuiteJob, run_suite
from tests.helpers import python_pytest, wait_for, write_tests


def make_job(tmp_path: Path, run: str, **suite: object) -> SuiteJob:
    phase = PhaseConfig.model_validate({"name": "p", "suite": [{"name": "s", "run": run, **suite}]})
    return SuiteJob(phase, phase.suites[0], tmp_path / "out" / "s.xml", tmp_path / "out" / "s.log")


def run_in(
    tmp_path: Path, source: str, args: str = "", **suite: object
) -> tuple[SuiteJob, SuiteRun]:
    write_tests(tmp_path / "suite", "test_it.py", source)
    job = make_job(tmp_path, python_pytest(f"{tmp_path / 'suite'} {args}"), **suite)
    return job, run_suite(job, threading.Event())


def test_pytest_commands_are_recognised() -> None:
    """pytest, py.test and python -m pytest are pytest; other runners are not."""
    assert is_pytest(["pytest", "x"]) and is_pytest(["/usr/bin/python3.11", "-m", "pytest"])
    assert not is_pytest(["npx", "jest"]) and not is_pytest(["python", "-m", "unittest"])


@pytest.mark.parametrize(
    ("line", "pytest_behind"),
    [
        ("cd e2e && pytest -q", True),
        ("API_KEY=x venv/bin/pytest tests", True),
        ("pytest tests/test_it*.py", True),
        ("pytest $SUITE", True),
        ("~/venv/bin/py.test tests", True),
        ("python3 -m pytest -x; echo done", True),
        ("timeout 600 pytest t", True),
        ("env VAR=1 pytest t", True),
        ("nice -n 10 python3 -m pytest t", True),
        ("bash -c 'pytest t'", True),
        ("python -X dev -m pytest t", True),
        ("uv run pytest t", True),
        ("cd e2e && exec pytest t", True),
        ("timeout 60 npx jest", False),
        ("npm test && echo pytest-free", False),
        ("cd web && npx jest", False),
        ("sh -c 'pip install pytest && ./run_e2e.sh'", False),
        ("cd . && pip install -q pytest && ./run_e2e.sh", False),
        ("echo pytest; ./run_e2e.sh", False),
        ("./run_e2e.sh --runner pytest", False),
    ],
)
def test_pytest_behind_shell_syntax_is_recognised(line: str, pytest_behind: bool) -> None:
    """A run line with shell syntax or a wrapper (timeout, env, nice, bash -c) still counts as
    pytest when it starts pytest (item 7): its failed tests can be rerun. A line that only
    mentions pytest (installs it, echoes it, passes it as a word) does not."""
    assert runs_pytest(line) is pytest_behind


def test_passing_suite_passes(tmp_path: Path) -> None:
    """A clean pytest run is a result, with node ids and a green gate."""
    job, run = run_in(tmp_path, "def test_a():\n    pass\ndef test_b():\n    pass\n")
    assert run.harness_error is None and run.exit_code == 0 and run.ended is RunEnd.COMPLETED
    assert [c.outcome for c in run.cases] == [Outcome.PASSED, Outcome.PASSED]
    assert run.cases[0].id.endswith("test_it.py::test_a")
    assert gates.judge(job.phase, [run], []).passed


def test_failing_suite_fails_the_gate_with_measured_value(tmp_path: Path) -> None:
    """A failing test is a result (not a harness error) that fails pass_rate with its value."""
    job, run = run_in(tmp_path, "def test_a():\n    pass\ndef test_b():\n    assert 1 == 2\n")
    assert run.harness_error is None and run.exit_code == 1
    result = gates.judge(job.phase, [run], [])
    verdict = next(v for v in result.verdicts if v.gate == "pass_rate")
    assert (
        not verdict.passed and verdict.measured == "50.0% (1/2)" and verdict.threshold == "≥ 100%"
    )


def test_crashing_runner_is_a_harness_error(tmp_path: Path) -> None:
    """A runner killed by a signal is a harness error even when its JUnit file looks fine."""
    source = "import os, signal\ndef test_a():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    job, run = run_in(tmp_path, source)
    assert run.harness_error == "runner killed by SIGKILL"
    assert run.ended is RunEnd.KILLED_BY_SIGNAL
    assert not gates.judge(job.phase, [run], []).passed


def test_collection_error_is_a_harness_error(tmp_path: Path) -> None:
    """pytest exit 2 (an import error at collection) is reported as interrupted, never a pass."""
    _, run = run_in(tmp_path, "import no_such_module\ndef test_a():\n    pass\n")
    assert run.harness_error == "pytest was interrupted (exit 2)"


def test_usage_error_is_a_harness_error_in_pytests_words(tmp_path: Path) -> None:
    """pytest exit 4 (bad arguments) is a harness error that says what pytest said."""
    _, run = run_in(tmp_path, "def test_a():\n    pass\n", args="--no-such-option")
    said = "pytest usage error (exit 4): unrecognized arguments: --no-such-option"
    assert run.harness_error == said
    assert run.ended is RunEnd.RUNNER_ERROR


def test_a_usage_errors_words_are_one_printable_bounded_line(tmp_path: Path) -> None:
    """A plugin's own usage error is the suite's text: terminal escapes (colour, a window
    title) go whole, other control characters (a line break) become spaces, and it is cut to
    SAYS_CHARS."""
    write_tests(
        tmp_path / "suite",
        "conftest.py",
        "import pytest\ndef pytest_configure(config):\n"
        "    raise pytest.UsageError('\\x1b[31;1mstaging\\x1b(B\\x9b0m\\rtoken\\x07\\x1b]0;t\\x07 '"
        " + 'x' * 1000)\n",
    )
    _, run = run_in(tmp_path, "def test_a():\n    pass\n")
    assert run.harness_error is not None
    words = run.harness_error.removeprefix("pytest usage error (exit 4): ")
    assert words.startswith("staging token xxx") and words.endswith("x…")
    assert len(words) == SAYS_CHARS and words.isprintable()


def test_dist_each_is_refused_never_read_as_retries(tmp_path: Path) -> None:
    """``--dist each``: a test failing on gw0 and passing on gw1 read as a flaky pass (its two
    workers' records folded as attempts). The run plugin refuses it: a harness error that says
    why, no test counted."""
    source = "import os\ndef test_breaks_on_gw0():\n"
    source += "    assert os.environ['PYTEST_XDIST_WORKER'] != 'gw0'\n"
    # In the suite's ini file, where the config's own check cannot see it.
    write_tests(tmp_path / "suite", "pytest.ini", "[pytest]\naddopts = -p xdist -n 2 --dist each\n")
    _, run = run_in(tmp_path, source)
    assert run.ended is RunEnd.RUNNER_ERROR and run.cases == ()
    assert run.harness_error == f"pytest usage error (exit 4): {DIST_EACH}"


def test_nothing_collected_is_a_harness_error(tmp_path: Path) -> None:
    """Zero tests collected (pytest exit 5) fails the gate."""
    job, run = run_in(tmp_path, "def helper():\n    pass\n")
    assert run.harness_error == "no tests collected (pytest exit 5)"
    assert not gates.judge(job.phase, [run], []).passed


def test_all_skipped_fails_the_gate(tmp_path: Path) -> None:
    """A suite whose every test skipped proves nothing about staging."""
    source = "import pytest\n@pytest.mark.skip\ndef test_a():\n    pass\n"
    _, run = run_in(tmp_path, source)
    assert run.harness_error == "its only test skipped"  # never "1 tests"


def test_too_fast_suite_fails_min_seconds(tmp_path: Path) -> None:
    """A suite faster than min_seconds is suspected of not touching staging."""
    job, run = run_in(tmp_path, "def test_a():\n    pass\n", min_seconds=60)
    verdict = next(v for v in gates.judge(job.phase, [run], []).verdicts if v.gate == "s: duration")
    assert not verdict.passed and "not against real services?" in verdict.reason


def test_plugins_load_with_autoload_off(tmp_path: Path) -> None:
    """PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 in a suite's env (the README's advice for many shards):
    deployloop's plugins are named with -p, so the JUnit report and the progress stream (its
    collected count) still come."""
    source = "def test_a():\n    pass\ndef test_b():\n    assert 0\n"
    _, run = run_in(tmp_path, source, env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert run.harness_error is None and run.collected == 2
    assert [c.outcome for c in run.cases] == [Outcome.PASSED, Outcome.FAILED]


def test_shrunken_collection_fails_expect_tests(tmp_path: Path) -> None:
    """Fewer tests than expect_tests says the collection shrank, from what to what."""
    job, run = run_in(tmp_path, "def test_a():\n    pass\n", expect_tests=25)
    verdict = next(v for v in gates.judge(job.phase, [run], []).verdicts if v.gate == "s: tests")
    assert not verdict.passed and verdict.reason == "collection shrank from 25 to 1"


def test_stopped_early_keeps_the_collection_and_says_what_did_not_run(tmp_path: Path) -> None:
    """-x with expect_tests = 5: the tests gate sees the 5 collected (no "shrank"), the
    harness verdict says 4 of 5 did not run."""
    source = "def test_a():\n    assert False\n" + "".join(
        f"def test_{n}():\n    pass\n" for n in "bcde"
    )
    job, run = run_in(tmp_path, source, "-x", expect_tests=5)
    verdicts = {v.gate: v for v in gates.judge(job.phase, [run], []).verdicts}
    assert (verdicts["s: tests"].passed, verdicts["s: tests"].measured) == (True, "5")
    assert "shrank" not in verdicts["s: tests"].reason
    assert verdicts["s: harness"].measured == "stopped early: 4 of 5 tests did not run"


def test_missing_junit_from_other_runner(tmp_path: Path) -> None:
    """A non-pytest runner whose junit glob matches nothing is a harness error."""
    job = make_job(tmp_path, f"{sys.executable} -c pass", junit="reports/*.xml")
    run = run_suite(job, threading.Event())
    assert run.harness_error is not None and run.harness_error.startswith("no JUnit file written")


@pytest.mark.parametrize(
    ("run", "says"),
    [
        (
            "pytest-not-installed -q tests",
            "`pytest-not-installed` not found on PATH (/usr/bin:/bin)",
        ),
        (
            "cd . && pytest-not-installed -q",
            "a program in `cd . && pytest-not-installed -q` not found",
        ),
    ],
)
def test_missing_program_names_it_and_the_path(tmp_path: Path, run: str, says: str) -> None:
    """A program not on PATH (cron's /usr/bin:/bin) is named with that PATH and the fix."""
    job = make_job(tmp_path, run)
    done = run_suite(job, threading.Event(), env={"PATH": "/usr/bin:/bin"})
    assert done.harness_error is not None and done.harness_error.startswith(says)
    assert "put the venv's bin first on PATH" in done.harness_error
    assert "not found" in job.log_path.read_text()  # the log says it too, for the morning


def test_missing_working_directory_is_named(tmp_path: Path) -> None:
    """A suite whose cwd does not exist says so instead of a bare 'No such file or directory'."""
    job = make_job(tmp_path, f"{sys.executable} -c pass", cwd=str(tmp_path / "gone"))
    done = run_suite(job, threading.Event())
    assert (
        done.harness_error == f"cannot start: working directory {tmp_path / 'gone'} does not exist"
    )


def test_truncated_junit_from_other_runner(tmp_path: Path) -> None:
    """A truncated JUnit file is a harness error naming the problem; stale files are ignored."""
    script = tmp_path / "write.py"
    script.write_text("open('r.xml','w').write('<testsuite><testcase name=\"a\"')\n")
    job = make_job(tmp_path, f"{sys.executable} {script}", junit="r.xml", cwd=str(tmp_path))
    run = run_suite(job, threading.Event())
    assert run.harness_error is not None and run.harness_error.startswith("JUnit file unreadable")


def test_timeout_kills_whole_process_group(tmp_path: Path) -> None:
    """A hanging suite is stopped at its timeout and no process it started survives."""
    pids = tmp_path / "pids"
    source = f"""
        import os, subprocess, time
        def test_hang():
            child = subprocess.Popen(["sleep", "300"])
            open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
            time.sleep(300)
    """
    _, run = run_in(tmp_path, source, timeout="2s")
    assert run.harness_error == "timed out after 2.0 s; process group stopped"
    assert run.ended is RunEnd.TIMEOUT
    assert run.wall_s < 15
    for pid in map(int, pids.read_text().split()):
        # SIGKILL is delivered by the time run_suite returns; the kernel may take a moment more
        wait_for(partial(_gone, pid), timeout=5)


def test_strays_left_by_a_finished_suite_are_reaped(tmp_path: Path) -> None:
    """A background process a passing test leaves behind does not outlive the suite."""
    pids = tmp_path / "pids"
    source = f"""
        import subprocess
        def test_leaves_server():
            child = subprocess.Popen(["sleep", "300"])
            open({str(pids)!r}, "w").write(str(child.pid))
    """
    _, run = run_in(tmp_path, source)
    assert run.harness_error is None
    wait_for(lambda: _gone(int(pids.read_text())), timeout=10)


def test_stop_event_interrupts_and_keeps_partial_results(tmp_path: Path) -> None:
    """Setting the stop event ends the suite at once and says so."""
    stop = threading.Event()
    write_tests(
        tmp_path / "suite", "test_it.py", "import time\ndef test_a():\n    time.sleep(300)\n"
    )
    job = make_job(tmp_path, python_pytest(str(tmp_path / "suite")))
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    run = run_suite(job, stop)
    assert run.harness_error == "interrupted; partial results kept"
    assert run.ended is RunEnd.INTERRUPTED
    assert run.wall_s < 10


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(autouse=True)
def _no_plugin_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Suites run with this interpreter, isolated from the outer pytest's options."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


def test_chatty_suite_log_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite that prints without end keeps its log under the cap, start and end both kept."""
    monkeypatch.setattr("deployloop.process.LOG_LIMIT", 200_000)
    monkeypatch.setattr("deployloop.process.LOG_KEEP", 50_000)
    source = """
        import sys
        def test_chatty():
            sys.stdout.write("FIRST LINE\\n")
            for _ in range(20):
                sys.stdout.write("x" * 100_000 + "\\n")
                sys.stdout.flush()
                import time; time.sleep(0.05)
            sys.stdout.write("LAST LINE\\n")
    """
    job, run = run_in(tmp_path, source, args="-s")
    text = job.log_path.read_text()
    assert run.harness_error is None
    assert len(text) < 200_000 + 100_000 * 3
    assert "FIRST LINE" in text and "LAST LINE" in text and "log capped" in text


# The suite's last test copies the progress file as it is while the suite still runs (the
# file is dropped once the suite has ended), polling until the pump has written test_leaks.
PROGRESS_COPIER = """
import os, time
def test_zz_copies_progress():
    source, copy = os.environ["PROGRESS_KEPT"], os.environ["PROGRESS_COPY"]
    deadline = time.monotonic() + 10
    text = ""
    while '"event": "test"' not in text and time.monotonic() < deadline:
        text = open(source).read() if os.path.exists(source) else ""
        time.sleep(0.01)
    open(copy, "w").write(text)
"""


def test_secrets_are_scrubbed_from_kept_output_and_results(tmp_path: Path) -> None:
    """A token a test prints, or carries in its id, is gone from the kept log, the progress
    file (while it exists: it is dropped after the suite), the kept JUnit file and the
    results; the raw JUnit file is not left anywhere."""
    from deployloop.redact import Redactor
    from deployloop.runner import progress_path

    token = "ghp_" + "k" * 36
    source = (
        f"import pytest\n@pytest.mark.parametrize('x', [1], ids=[{token!r}])\n"
        f"def test_leaks(x):\n    print({token!r})\n    assert False, {token!r}\n"
    )
    write_tests(tmp_path / "suite", "test_it.py", source)
    write_tests(tmp_path / "suite", "test_zz.py", PROGRESS_COPIER)
    job = make_job(tmp_path, python_pytest(f"{tmp_path / 'suite'} -rA"))
    copy = tmp_path / "progress-copy.jsonl"
    env = {"PROGRESS_KEPT": str(progress_path(job)), "PROGRESS_COPY": str(copy)}
    run = run_suite(job, threading.Event(), env=env, redactor=Redactor())
    case = run.cases[0]
    assert case.broken and token not in case.id + case.name + case.message + case.details
    assert token not in job.log_path.read_text() and "[REDACTED]" in job.log_path.read_text()
    assert token not in job.junit_path.read_text() and run.junit_path == str(job.junit_path)
    progress = copy.read_text()
    assert '"event": "test"' in progress and token not in progress and "[REDACTED]" in progress
    assert not progress_path(job).exists()
    assert sorted(p.name for p in job.log_path.parent.iterdir() if p.suffix == ".xml") == [
        job.junit_path.name
    ]


def test_plugin_falls_silent_when_nobody_reads_its_fifo(tmp_path: Path) -> None:
    """A FIFO with no reader (deployloop was killed) neither blocks nor fails the suite."""
    import os
    import subprocess

    from deployloop.runner import PLUGIN_DIR

    fifo = tmp_path / "progress"
    os.mkfifo(fifo)
    write_tests(tmp_path / "suite", "test_it.py", "def test_ok():\n    pass\n")
    env = {**os.environ, "DEPLOYLOOP_PROGRESS": str(fifo), "PYTHONPATH": str(PLUGIN_DIR)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "deployloop_live", str(tmp_path / "suite")],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout


def test_other_runners_junit_is_kept_beside_the_log(tmp_path: Path) -> None:
    """A non-pytest runner's JUnit file is copied next to its log as <suite>.xml."""
    script = tmp_path / "write.py"
    script.write_text(
        "open('r.xml','w').write('<testsuite><testcase classname=\"a\" name=\"b\"/></testsuite>')\n"
    )
    job = make_job(tmp_path, f"{sys.executable} {script}", junit="r.xml", cwd=str(tmp_path))
    run = run_suite(job, threading.Event())
    assert run.harness_error is None and run.junit_path == str(job.junit_path)
    assert "testcase" in job.junit_path.read_text()


def select_job(job: SuiteJob, *ids: str) -> SuiteJob:
    return SuiteJob(job.phase, job.suite, job.junit_path, job.log_path, ids)


def test_loadgroup_ids_select_their_test_and_missing_ids_are_a_harness_error(
    tmp_path: Path,
) -> None:
    """Case 24: an xdist loadgroup id ``test_a@grp`` selects test_a alone; a selection that
    finds fewer tests than asked is a harness error naming the missing id (item 10)."""
    job, full = run_in(tmp_path, "def test_a():\n    pass\ndef test_b():\n    pass\n")
    test_a = full.cases[0].id
    again = run_suite(select_job(job, f"{test_a}@agent_session"), threading.Event())
    assert again.harness_error is None
    assert [c.name for c in again.cases] == ["test_a"]
    missing = test_a.replace("test_a", "test_z")
    gone = run_suite(select_job(job, test_a, missing), threading.Event())
    assert gone.harness_error == f"rerun selected 1 of 2 tests (not found: {missing})"


def test_every_result_file_is_kept_and_repairs_are_noted(tmp_path: Path) -> None:
    """junit = "reports/*.xml" matching two files: both are read and kept together (item 12);
    a bad character repaired in one is noted in the suite's log."""
    script = tmp_path / "write.py"
    script.write_text(
        "import os\nos.makedirs('reports', exist_ok=True)\n"
        "open('reports/a.xml','w').write('<testsuite><testcase classname=\"a\" name=\"x\"/>"
        "</testsuite>')\n"
        "open('reports/b.xml','w').write('<testsuite><testcase classname=\"b\" name=\"y\">"
        '<failure message="&#x1B;[31mboom"/></testcase></testsuite>\')\n'
    )
    job = make_job(tmp_path, f"{sys.executable} {script}", junit="reports/*.xml", cwd=str(tmp_path))
    run = run_suite(job, threading.Event())
    assert [c.name for c in run.cases] == ["x", "y"]
    kept = Path(run.junit_path or "")
    assert kept.is_dir() and sorted(p.name for p in kept.iterdir()) == ["000-a.xml", "001-b.xml"]
    assert "[deployloop] JUnit repaired: " in job.log_path.read_text()


def test_rerun_collects_only_the_files_of_its_tests(tmp_path: Path) -> None:
    """A rerun of one test imports only its file: another file that cannot even be imported
    now does not turn the rerun into a collection error (the suite's path stays in run)."""
    job, full = run_in(tmp_path, "def test_a():\n    assert False\n")
    write_tests(tmp_path / "suite", "test_other.py", "raise ImportError('not this file')\n")
    (failed,) = full.cases
    again = run_suite(select_job(job, failed.id), threading.Event())
    assert again.harness_error is None and [c.name for c in again.cases] == ["test_a"]
    assert "test_other" not in job.log_path.with_suffix(".log").read_text()


def test_rerun_makes_items_only_of_the_functions_its_ids_name(tmp_path: Path) -> None:
    """In the files it collects, a rerun makes items only of the selected functions (and
    classes): a function of the same module that cannot even become an item (a bad
    parametrize) is left alone, and pytest deselects nothing (issue 15 item 10, bench ratio)."""
    source = (
        "import pytest\n\nclass TestGroup:\n    def test_m(self):\n        assert False\n\n"
        "def test_a():\n    assert False\n\ndef test_b():\n    pass\n"
    )
    job, full = run_in(tmp_path, source)
    ids = tuple(c.id for c in full.cases if c.broken)
    unmakeable = "\n@pytest.mark.parametrize('x', [1])\ndef test_unmakeable(y):\n    pass\n"
    write_tests(tmp_path / "suite", "test_it.py", source + unmakeable)
    again = run_suite(select_job(job, *ids), threading.Event())
    assert again.harness_error is None
    assert sorted(c.name for c in again.cases) == ["test_a", "test_m"]
    assert "deselected" not in job.log_path.read_text()


def test_dist_each_only_collecting_is_not_refused(tmp_path: Path) -> None:
    """xdist distributes no ``--collect-only``: nothing to refuse there."""
    write_tests(tmp_path, "test_it.py", "def test_a():\n    pass\n")
    argv = [sys.executable, "-m", "pytest", "-p", "deployloop_run", "-p", "xdist", "-n", "2"]
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR), JUNIT_ENV: str(tmp_path / "r.xml")}
    done = subprocess.run(
        [*argv, "--dist", "each", "--collect-only", "-q", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_it.py::test_a" in done.stdout
