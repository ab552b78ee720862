"""Rerun selection of ids that name no test as such: a module that failed to collect (its file),
and a parametrize id holding a secret (kept masked, matched by the plugin as a wildcard)."""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from deployloop.demo import assets
from deployloop.junit import read_cases
from deployloop.simulator import Simulator
from tests.helpers import (
    cli,
    config_text,
    phase_block,
    python_pytest,
    session_dirs,
    suite_block,
    write_tests,
)

# A module that fails to import on the first version it sees and imports on any later one.
BROKEN_IMPORT = """
import json, os, pathlib, urllib.request
FIRST = pathlib.Path(__file__).parent.parent / "first_version"
with urllib.request.urlopen(os.environ["STAGING_URL"] + "/version", timeout=5) as r:
    _v = json.loads(r.read())["commit"]
if not FIRST.exists():
    FIRST.write_text(_v)
if _v == FIRST.read_text():
    raise ImportError("client library broken on " + _v)

def test_one(): pass
def test_two(): pass
"""
# pytest's own record of such a module (xunit1), as case p12 wrote it.
COLLECT_ERROR_XML = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
 errors="1" failures="0" skipped="0" tests="1"><testcase classname="" name="suite.test_imp"
 file="suite/test_imp.py" time="0.000"><error message="collection failure">ImportError while
importing test module '/x/suite/test_imp.py'.
Traceback:
suite/test_imp.py:8: in &lt;module&gt;
    raise ImportError("client library broken on " + _v)
E   ImportError: client library broken on rev-0005</error></testcase></testsuite></testsuites>
"""
# A GitHub token shape the redactor masks (assembled here, so no scanner takes it for a leak).
SECRETS = (
    "ghp_" + "0123456789abcdefghijklmnopqrstuvwxyzAB",
    "ghp_" + "Zx81Qw7Ep2Rt5Yu9Io3Pa6Sd4Fg0Hj1Kl8M",
)
SECRET_IDS = """
import pathlib, pytest
COUNT = pathlib.Path(__file__).parent.parent / "n"

@pytest.mark.parametrize("tok", [{first!r}, {second!r}])
def test_rejects_expired(tok):
    if tok == {first!r}:
        n = int(COUNT.read_text()) if COUNT.exists() else 0
        COUNT.write_text(str(n + 1))
        assert n > 0, "flaky: gateway 502"

def test_ok(): pass
"""

# Both parametrized tests fail on their first run and pass on deployloop's rerun.
BOTH_FLAKY = """
import pathlib, pytest

@pytest.mark.parametrize("tok", [{first!r}, {second!r}])
def test_token(tok):
    seen = pathlib.Path(__file__).parent.parent / ("n1" if tok == {first!r} else "n2")
    first = not seen.exists()
    seen.write_text("x")
    assert not first, "flaky: gateway 502"
"""


def kept_files(root: Path) -> list[tuple[str, str]]:
    """(path, text) of every file deployloop kept under ``root`` (the suite's own excluded),
    SQLite stores read through a connection (their WAL included)."""
    kept = [p for p in root.rglob("*") if p.is_file() and "suite" not in p.relative_to(root).parts]
    texts = [(str(p), p.read_bytes().decode("utf-8", "replace")) for p in kept]
    for db in (p for p in kept if p.suffix == ".db"):
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            rows = [r for (t,) in tables for r in conn.execute(f"SELECT * FROM {t}")]
        texts.append((f"{db} rows", "\n".join(map(str, rows))))
    return texts


def events(tmp_path: Path) -> list[dict[str, Any]]:
    (session,) = session_dirs(tmp_path / "logs")
    return [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]


def test_collection_error_record_is_its_module_with_its_error_line(tmp_path: Path) -> None:
    """pytest's collection-error record reads as the module's file, with the E line as message."""
    path = tmp_path / "w.xml"
    path.write_text(COLLECT_ERROR_XML)
    (case,) = read_cases(path)
    assert case.id == "suite/test_imp.py"
    assert case.message == "ImportError: client library broken on rev-0005"
    assert case.error_type == "ImportError"


@pytest.mark.slow
def test_collection_error_fixed_on_next_version_is_closed(tmp_path: Path) -> None:
    """Case p12: failed-first reruns the module's file, all pass; the issue is closed as fixed."""
    write_tests(tmp_path / "suite", "test_imp.py", BROKEN_IMPORT)
    write_tests(tmp_path / "suite", "test_fine.py", "def test_fine(): pass\n")
    with Simulator() as staging:
        trigger = f"{sys.executable} {assets() / 'deploy.py'} {staging.base_url}"
        suite = suite_block("w", python_pytest("suite"), env={"STAGING_URL": staging.base_url})
        extra = (
            '[issues]\ntracker = "local"\n'
            f"[redeploy]\ntrigger = '''{trigger}'''\n"
            'poll = "0.3s"\nsettle = "0.5s"\ntimeout = "1m"\n'
        )
        session = 'max_iterations = 2\nbudget = "3m"'
        target = 'health = "/health"\nversion = { url = "/version", json = "commit" }\n'
        text = config_text(phase_block("p", suite), base_url=staging.base_url, session=session)
        text = text.replace("\n\n[[phase]]", f"\n{target}\n[[phase]]", 1) + extra
        (tmp_path / "deployloop.toml").write_text(text)
        done = cli("run", cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = events(tmp_path)
    (verdict,) = [e for e in found if e["event"] == "failed_first_suite" and not e["early"]]
    assert (verdict["passed"], verdict["total"], verdict["harness_error"]) == (1, 1, None)
    (issue,) = (tmp_path / "logs" / "issues").glob("*.md")
    body = issue.read_text()
    assert "- state: closed" in body
    assert [e["action"] for e in found if e["event"] == "issue"] == ["created", "closed"]
    assert "client library broken on" in body.split("### Error")[1].split("###")[0]
    assert "`suite/test_imp.py`" in body


def secret_project(tmp_path: Path, name: str, template: str) -> None:
    """One phase with suite ``name``: ``template`` (SECRETS as ``{first}``/``{second}``) as
    ``suite/test_<name>.py``, one iteration, the local tracker."""
    first, second = SECRETS
    write_tests(tmp_path / "suite", f"test_{name}.py", template.format(first=first, second=second))
    suite = suite_block(name, python_pytest("suite"))
    extra = '[issues]\ntracker = "local"\n'
    text = config_text(phase_block("p", suite), session="max_iterations = 1", extra=extra)
    (tmp_path / "deployloop.toml").write_text(text)


@pytest.mark.slow
def test_masked_parametrize_id_reruns_and_is_flaky(tmp_path: Path) -> None:
    """Case p13: a secret in a failing id: its masked id reruns it, green, flaky, nothing leaks."""
    secret_project(tmp_path, "j", SECRET_IDS)
    done = cli("run", "--once", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = events(tmp_path)
    (end,) = [e for e in found if e["event"] == "phase_end"]
    assert end["passed"], end
    assert not (tmp_path / "logs" / "issues").exists() or not any(
        (tmp_path / "logs" / "issues").glob("*.md")
    )
    log = (session_dirs(tmp_path / "logs")[0] / "session.md").read_text()
    # the masked id selected both parametrized tests; the one not asked for is ignored
    assert "suite p/j [rerun]: 2 passed in" in log and "HARNESS ERROR" not in log
    flaky = "flaky (passed on rerun): suite/test_j.py::test_rejects_expired"
    assert re.search(re.escape(flaky) + r"\[\[REDACTED:[0-9a-f]{6}\]\]", log), log[-2000:]
    leaks = [path for path, text in kept_files(tmp_path) if any(s in text for s in SECRETS)]
    assert not leaks, leaks


def _flaky_ids(tmp_path: Path) -> list[str]:
    """The newest session's phase_end flaky list (session directories sort by start)."""
    session = session_dirs(tmp_path / "logs")[-1]
    found = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    (end,) = [e for e in found if e["event"] == "phase_end"]
    assert end["passed"], end
    return sorted(end["flaky"])


@pytest.mark.slow
def test_two_secret_ids_stay_two_flaky_tests_with_stable_tags(tmp_path: Path) -> None:
    """Two secret parametrize ids failing once: two distinct tagged flaky ids, the same on a
    second run over the same state, and no raw secret in any file or row deployloop kept."""
    secret_project(tmp_path, "t", BOTH_FLAKY)
    runs = []
    for _ in range(2):
        for mark in tmp_path.glob("n?"):
            mark.unlink()
        done = cli("run", "--once", "--new", cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs.append(_flaky_ids(tmp_path))
    tagged = r"suite/test_t\.py::test_token\[\[REDACTED:[0-9a-f]{6}\]\]"
    assert len(set(runs[0])) == 2 and all(re.fullmatch(tagged, i) for i in runs[0]), runs
    assert runs[1] == runs[0], runs
    assert len(session_dirs(tmp_path / "logs")) == 2
    leaks = [path for path, text in kept_files(tmp_path) if any(s in text for s in SECRETS)]
    assert not leaks, leaks
