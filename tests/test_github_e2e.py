"""`deployloop run` filing on GitHub end to end: real CLI, real PyGithub, a local GitHub server."""

from __future__ import annotations

from pathlib import Path

from deployloop.testing.github_server import FakeGitHub, Fault, iter_bodies
from tests.helpers import cli, config_text, phase_block, python_pytest, suite_block, write_tests

SECRET = "ghp_" + "s" * 36  # what a careless test prints: must never reach GitHub
SUITE = f"""
import os, pytest

def _leak():
    print("Authorization: Bearer " + os.environ["SOAK_API_TOKEN"], "{SECRET}")

@pytest.mark.parametrize("n", range(20))
def test_ws(n):
    _leak()
    raise ConnectionError(f"server closed with 1011 (internal error) request {{n}}")

@pytest.mark.parametrize("n", range(12))
def test_orders(n):
    raise KeyError(f"order ord-{{n}} missing token={SECRET}")

@pytest.mark.parametrize("n", range(8))
def test_login(n):
    assert n < 0, f"login returned 500 for user {{n}}"

@pytest.mark.parametrize("n", range(60))
def test_fine(n):
    pass
"""


def project(tmp_path: Path, github: FakeGitHub) -> dict[str, str]:
    write_tests(tmp_path / "e2e", "test_e2e.py", SUITE)
    tracker = (
        f'[issues]\ntracker = "github"\nrepo = "{github.repo}"\ntoken = "${{GITHUB_TOKEN}}"\n'
        f'api_url = "{github.url}"\nwrite_interval = "0s"\n[retest]\nrerun_failed = false\n'
    )
    text = config_text(
        phase_block("e2e", suite_block("all", python_pytest(str(tmp_path / "e2e")))), extra=tracker
    )
    (tmp_path / "deployloop.toml").write_text(text)
    return {"GITHUB_TOKEN": github.token, "SOAK_API_TOKEN": "tok-" + "x" * 20}


def test_three_causes_three_issues_never_twice(tmp_path: Path) -> None:
    """40 failures in 3 causes: exactly 3 issues; a fresh session files none; no secret leaks."""
    with FakeGitHub() as github:
        env = project(tmp_path, github)
        first = cli("run", "--once", cwd=tmp_path, env=env)
        assert first.returncode == 1, first.stderr
        assert len(github.requests("POST", "/issues")) == 3
        again = cli("run", "--once", "--new", cwd=tmp_path, env=env)
        assert again.returncode == 1, again.stderr
        assert len(github.requests("POST", "/issues")) == 3
        sent = "\n".join(iter_bodies(github.requests()))
    assert SECRET not in sent and env["SOAK_API_TOKEN"] not in sent and github.token not in sent
    assert sent.count("deployloop:fingerprint=") >= 3
    logs = "\n".join(p.read_text() for p in (tmp_path / "logs").rglob("*.md"))
    logs += "\n".join(p.read_text() for p in (tmp_path / "logs").rglob("*.jsonl"))
    assert SECRET not in logs and env["SOAK_API_TOKEN"] not in logs


def test_lost_create_answer_files_one_issue(tmp_path: Path) -> None:
    """A create that GitHub performed but answered 502 is found again, not filed twice."""
    with FakeGitHub() as github:
        env = project(tmp_path, github)
        github.inject(Fault.lost_create())
        assert cli("run", "--once", cwd=tmp_path, env=env).returncode == 1
        creates = github.requests("POST", "/issues")
    assert sorted(c.status for c in creates) == [201, 201, 502]  # the lost answer...
    assert len({c.body["title"] for c in creates}) == 3  # ...was looked up, not re-posted


def test_dropped_labels_warn_once_and_never_duplicate(tmp_path: Path) -> None:
    """No push access: GitHub drops the labels; the log warns, a fresh session files nothing new
    and a person's "not planned" close is left alone, logged and reported as muted."""
    with FakeGitHub() as github:
        github.push_access = False
        env = project(tmp_path, github)
        assert cli("run", "--once", cwd=tmp_path, env=env).returncode == 1
        github.close_by_hand(1, "not_planned")
        assert cli("run", "--once", "--new", cwd=tmp_path, env=env).returncode == 1
        assert len(github.requests("POST", "/issues$")) == 3
        assert github.issues[1]["state"] == "closed" and github.comments(1) == []
    logs = [p.read_text() for p in sorted((tmp_path / "logs").glob("*/session.md"))]
    assert len(logs) == 2
    assert logs[0].count("WARNING tracker: GitHub dropped label(s)") == 1
    assert "muted by #1" in logs[1]
    reports = sorted((tmp_path / "logs").glob("*/report.md"))
    assert "| muted by #1 |" in reports[-1].read_text()


FOUR_CAUSES = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_alpha(n):
    raise ConnectionError("alpha refused")

@pytest.mark.parametrize("n", range(3))
def test_beta(n):
    raise KeyError("beta missing")

@pytest.mark.parametrize("n", range(2))
def test_gamma(n):
    raise TimeoutError("gamma timed out")

def test_delta():
    raise ValueError("delta bad value")

@pytest.mark.parametrize("n", range(30))
def test_fine(n):
    pass
"""
DEFERRAL = "more new failure clusters"


def test_deferred_causes_are_announced_once_over_three_sessions(tmp_path: Path) -> None:
    """max_new_per_iteration = 1 and 4 causes, three `run --once --new`: one issue more per
    session, causes with an issue are adopted (not counted), the "N more wait" comment is
    posted once, no comment repeats on any issue, and no cause gets two issues."""
    with FakeGitHub() as github:
        write_tests(tmp_path / "e2e", "test_e2e.py", FOUR_CAUSES)
        tracker = (
            f'[issues]\ntracker = "github"\nrepo = "{github.repo}"\n'
            f'token = "${{GITHUB_TOKEN}}"\napi_url = "{github.url}"\nwrite_interval = "0s"\n'
            "max_new_per_iteration = 1\n[retest]\nrerun_failed = false\n"
        )
        suite = suite_block("all", python_pytest(str(tmp_path / "e2e")))
        (tmp_path / "deployloop.toml").write_text(
            config_text(phase_block("e2e", suite), extra=tracker)
        )
        env = {"GITHUB_TOKEN": github.token}
        for n, args in enumerate((("--once",), ("--once", "--new"), ("--once", "--new")), 1):
            ran = cli("run", *args, cwd=tmp_path, env=env)
            assert ran.returncode == 1, ran.stderr
            assert len(github.requests("POST", "/issues$")) == n
        comments = {number: github.comments(number) for number in github.issues}
    titles = [issue["title"] for issue in github.issues.values()]
    assert len(set(titles)) == len(titles) == 3
    assert all(len(set(said)) == len(said) for said in comments.values())
    deferrals = [c for said in comments.values() for c in said if DEFERRAL in c]
    assert len(deferrals) == 1 and deferrals[0].startswith("3 more")


VERSIONED = """
import os

def test_checkout():
    assert not os.path.exists({broken!r}), "checkout returned 500"
"""


def test_a_new_session_reopens_a_hand_closed_issue_and_closes_it_once_fixed(
    tmp_path: Path,
) -> None:
    """Closed as completed by a person while failing: the next session reopens it saying
    "still failing on <version>" (no body dump); a later session that sees the cause pass
    on a new version closes it as verified fixed."""
    broken, version = tmp_path / "broken", tmp_path / "version.txt"
    with FakeGitHub() as github:
        write_tests(tmp_path / "e2e", "test_e2e.py", VERSIONED.format(broken=str(broken)))
        tracker = (
            f'[issues]\ntracker = "github"\nrepo = "{github.repo}"\n'
            f'token = "${{GITHUB_TOKEN}}"\napi_url = "{github.url}"\nwrite_interval = "0s"\n'
            "[retest]\nrerun_failed = false\n"
        )
        text = config_text(
            phase_block("e2e", suite_block("all", python_pytest(str(tmp_path / "e2e")))),
            extra=tracker,
        ).replace("[target]\n", f'[target]\nversion = {{ command = "cat {version}" }}\n')
        (tmp_path / "deployloop.toml").write_text(text)
        env = {"GITHUB_TOKEN": github.token}
        broken.touch()
        version.write_text("rev-001\n")
        assert cli("run", "--once", cwd=tmp_path, env=env).returncode == 1
        github.close_by_hand(1, "completed")
        assert cli("run", "--once", "--new", cwd=tmp_path, env=env).returncode == 1
        assert github.issues[1]["state"] == "open"
        [reopened] = github.comments(1)
        assert reopened.startswith("Still failing on `rev-001`: reopened")
        assert "lost track" not in reopened and "deployloop:fingerprint" not in reopened
        broken.unlink()
        version.write_text("rev-002\n")
        assert cli("run", "--once", "--new", cwd=tmp_path, env=env).returncode == 0
        assert github.issues[1]["state"] == "closed"
        assert "Verified fixed in `rev-002`" in github.comments(1)[-1]
        assert len(github.requests("POST", "/issues$")) == 1
