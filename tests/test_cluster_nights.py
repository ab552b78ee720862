"""Three nights of fresh noise through a real `deployloop run`: one GitHub issue per cause.

The suite "runs" by copying the labeled corpus's night N JUnit files (pytest, jest-junit,
mocha, go, surefire, Playwright; new ids, pods, paths, times each night) into its report
directory; deployloop files on the local GitHub server through PyGithub.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deployloop.testing.github_server import FakeGitHub
from tests.corpus import CORPUS
from tests.helpers import cli, config_text, phase_block, suite_block

NIGHTS = 3
# Each call copies the next night's files; the counter lives beside the reports.
PLAYER = """\
import pathlib, shutil, sys
corpus, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
counter = out.parent / "night.txt"
night = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(night))
out.mkdir(parents=True, exist_ok=True)
for old in out.glob("*.xml"):
    old.unlink()
for path in sorted((corpus / f"night{night}").glob("*.xml")):
    shutil.copy(path, out / path.name)
sys.exit(1)
"""


def test_three_nights_of_fresh_noise_file_one_issue_per_cause(tmp_path: Path) -> None:
    """After 3 nights (3 iterations, each night's noise new): issues == labeled causes."""
    player = tmp_path / "play_night.py"
    player.write_text(PLAYER, encoding="utf-8")
    reports = tmp_path / "reports"
    run = f"{sys.executable} {player} {CORPUS} {reports}"
    suite = suite_block("e2e", run, junit=f"{reports}/*.xml")
    causes = set(json.loads((CORPUS / "labels.json").read_text(encoding="utf-8")).values())
    with FakeGitHub() as github:
        extra = (
            f'[issues]\ntracker = "github"\nrepo = "{github.repo}"\n'
            f'token = "${{GITHUB_TOKEN}}"\napi_url = "{github.url}"\nwrite_interval = "0s"\n'
            "max_new_per_iteration = 100\nbroken_threshold = 1.0\n"
            "[retest]\nrerun_failed = false\n"
        )
        session = f'max_iterations = {NIGHTS}\ninterval = "0.1s"'
        text = config_text(phase_block("nightly", suite), extra=extra, session=session)
        (tmp_path / "deployloop.toml").write_text(text, encoding="utf-8")
        done = cli("run", cwd=tmp_path, env={"GITHUB_TOKEN": github.token}, timeout=300)
        issues = len(github.issues)
    assert done.returncode == 1, done.stderr
    assert (tmp_path / "night.txt").read_text() == str(NIGHTS)
    assert issues == len(causes) == 37
