"""`deployloop run` end to end: real CLI, real pytest suites, real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    session_dirs,
    suite_block,
    write_tests,
)

ANSI = re.compile(r"\x1b\[")


def make_project(tmp_path: Path, source: str, **suite: object) -> Path:
    write_tests(tmp_path / "e2e", "test_e2e.py", source)
    text = config_text(
        phase_block("infra", suite_block("critical", python_pytest(str(tmp_path / "e2e")), **suite),
                    fail_fast=True),
        phase_block("journeys", suite_block("shop", python_pytest(str(tmp_path / "e2e")))),
        extra='[retest]\nrerun_failed = false\n',
    )  # fmt: skip
    (tmp_path / "deployloop.toml").write_text(text)
    return tmp_path / "deployloop.toml"


def only_session(tmp_path: Path) -> Path:
    (directory,) = session_dirs(tmp_path / "logs")
    return directory


def test_green_run_exits_zero_and_logs(tmp_path: Path) -> None:
    """All gates green: exit 0, session.md with ✅ verdicts, events.jsonl with the story."""
    make_project(tmp_path, "def test_a():\n    pass\n")
    done = cli("run", "--once", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    session = only_session(tmp_path)
    log = (session / "session.md").read_text()
    assert "✅ pass_rate: 100.0% (1/1)" in log and "session ended: green" in log
    kinds = [
        json.loads(line)["event"] for line in (session / "events.jsonl").read_text().splitlines()
    ]
    assert kinds[0] == "session_start" and kinds[-2:] == ["session_end", "report"]
    assert {"suite_start", "suite_end", "phase_end", "iteration_end"} <= set(kinds)
    assert (session / "1" / "critical.xml").is_file() and (session / "1" / "critical.log").is_file()


def test_failing_run_exits_one_with_clusters_in_log(tmp_path: Path) -> None:
    """A failing gate: exit 1, the failing tests grouped by fingerprint with their message."""
    source = "import pytest\n@pytest.mark.parametrize('n', range(3))\ndef test_ws(n):\n"
    source += "    raise ConnectionError(f'server closed with 1011 request {n}')\n"
    make_project(tmp_path, source)
    done = cli("run", "--once", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    log = (only_session(tmp_path) / "session.md").read_text()
    assert "❌ pass_rate: 0.0% (0/3)" in log
    assert re.search(r"failing cluster `v2-[0-9a-f]+` \(3 tests\): .*1011", log)
    assert "phases not run: journeys (infra failed (fail_fast))" in log


def test_harness_error_is_reported_not_passed(tmp_path: Path) -> None:
    """A suite that collects nothing is a harness error in the log and exit 1."""
    make_project(tmp_path, "def helper():\n    pass\n")
    done = cli("run", "--once", cwd=tmp_path)
    assert done.returncode == 1
    log = (only_session(tmp_path) / "session.md").read_text()
    assert "HARNESS ERROR: no tests collected (pytest exit 5)" in log


def test_output_off_a_terminal_is_plain(tmp_path: Path) -> None:
    """Piped output has timestamped plain lines and no colour or cursor codes."""
    make_project(tmp_path, "def test_a():\n    assert False\n")
    done = cli("run", "--once", cwd=tmp_path)
    assert not ANSI.search(done.stdout + done.stderr)
    lines = [line for line in done.stdout.splitlines() if line]
    assert lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line) for line in lines)


def test_unknown_phase_is_usage_error(tmp_path: Path) -> None:
    """--phase with a name the config lacks exits 2 naming the phases it has."""
    make_project(tmp_path, "def test_a():\n    pass\n")
    done = cli("run", "--once", "--phase", "nope", cwd=tmp_path)
    assert done.returncode == 2 and "no phase named 'nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_phase_selection_runs_only_that_phase(tmp_path: Path) -> None:
    """--phase journeys runs only the journeys suite."""
    make_project(tmp_path, "def test_a():\n    pass\n")
    done = cli("run", "--once", "--phase", "journeys", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    session = only_session(tmp_path)
    assert not (session / "1" / "critical.xml").exists() and (session / "1" / "shop.xml").exists()


def test_bad_budget_is_usage_error(tmp_path: Path) -> None:
    """--budget that is no duration exits 2 with one line."""
    make_project(tmp_path, "def test_a():\n    pass\n")
    done = cli("run", "--budget", "soon", cwd=tmp_path)
    assert done.returncode == 2 and "not a duration" in done.stderr


def test_iterations_until_max_then_exit_one(tmp_path: Path) -> None:
    """Failing every time: iterations separated by the interval until max_iterations, exit 1."""
    path = make_project(tmp_path, "def test_a():\n    assert False\n")
    path.write_text(path.read_text().replace('name = "t"', 'name = "t"\ninterval = "0.2s"'))
    done = cli("run", "--max-iterations", "3", cwd=tmp_path)
    assert done.returncode == 1
    log = (only_session(tmp_path) / "session.md").read_text()
    assert log.count("## Iteration") == 3 and "max_iterations (3) reached" in log


def test_dry_run_decides_issues_but_writes_none(tmp_path: Path) -> None:
    """--dry-run prints the issue it would create and writes no issue file."""
    make_project(tmp_path, "def test_a():\n    raise RuntimeError('backend said 502')\n")
    done = cli("run", "--once", "--dry-run", cwd=tmp_path)
    assert done.returncode == 1
    assert "dry run: would create issue" in done.stdout and "backend said 502" in done.stdout
    assert not list((tmp_path / "logs").glob("issues/*.md"))


def test_failing_run_files_one_local_issue_per_cause(tmp_path: Path) -> None:
    """Two causes across three tests file exactly two local issues, each with its marker."""
    source = (
        "import pytest\n@pytest.mark.parametrize('n', range(2))\ndef test_a(n):\n"
        "    raise ConnectionError(f'server closed with 1011 run {n}')\n"
        "def test_b():\n    raise KeyError('order id')\n"
        "@pytest.mark.parametrize('n', range(5))\ndef test_fine(n):\n    pass\n"
    )  # 3 of 8 failing: under broken_threshold, so one issue per cause
    make_project(tmp_path, source)
    assert cli("run", "--once", cwd=tmp_path).returncode == 1
    issues = sorted((tmp_path / "logs" / "issues").glob("*.md"))
    assert len(issues) == 2
    assert all("<!-- deployloop:fingerprint=v2-" in p.read_text() for p in issues)
    assert cli("run", "--once", "--new", cwd=tmp_path).returncode == 1
    assert len(list((tmp_path / "logs" / "issues").glob("*.md"))) == 2  # no duplicate, ever


def test_unreachable_target_exits_3_with_the_story_logged(tmp_path: Path) -> None:
    """Health down past unreachable_timeout: exit 3, no suite run, the session log says why."""
    path = make_project(tmp_path, "def test_a():\n    pass\n")
    text = path.read_text().replace(
        'base_url = "http://127.0.0.1:9"',
        'base_url = "http://127.0.0.1:9"\nhealth = "/health"\nunreachable_timeout = "1s"',
    )
    path.write_text(text)
    done = cli("run", "--once", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    session = only_session(tmp_path)
    log = (session / "session.md").read_text()
    assert "health FAILED" in log and "session ended: unreachable" in log
    assert not (session / "1").exists()
