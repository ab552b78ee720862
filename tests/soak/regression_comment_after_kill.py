"""Regression (found by the soak, now fixed): kill -9 after a comment reached GitHub but before the
iteration's filing was saved; the resumed run files the iteration again and posts the very
same comment a second time.

``python -m tests.soak.regression_comment_after_kill`` — the real CLI against the local GitHub
stand-in. Exit 1 while the comment is duplicated, 0 once it is posted only once.

1. ``run --max-iterations 2``: iteration 1 fails on v1 → issue #1; the redeploy trigger deploys
   v2; iteration 2 still fails → "Still failing on v2 (was v1)…" is posted. Its answer is held
   back 3 s (the comment is stored at once), and the daemon is killed meanwhile.
2. ``run`` again resumes iteration 2 with the same results and the same saved cluster records,
   so triage decides the same comment; ``apply`` posts it with ``verify=False`` (only outbox
   replays verify), and #1 now carries it twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

from deployloop.testing.github_server import FakeGitHub, Fault

TEST = """
def test_search():
    raise AssertionError("search index not ready")
"""

CONFIG = """
[session]
name = "nightly"

[target]
base_url = "http://127.0.0.1:9"
version = {{ command = "cat version.txt" }}

[[phase]]
name = "search"
  [[phase.suite]]
  name = "search"
  run = "{python} -m pytest -q -p no:cacheprovider test_search.py"

[issues]
tracker = "github"
repo = "{repo}"
token = "${{GITHUB_TOKEN}}"
api_url = "{url}"
write_interval = "0.05s"

[retest]
rerun_failed = false

[redeploy]
trigger = "{python} -c 'open(\\"version.txt\\", \\"w\\").write(\\"v2\\")'"
poll = "0.1s"
settle = "0s"
timeout = "5s"
"""


def start(root: Path, github: FakeGitHub) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GITHUB_TOKEN": github.token}
    with open(root / "out.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "deployloop", "run", "--max-iterations", "2"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="deployloop-repro-"))
    (root / "test_search.py").write_text(textwrap.dedent(TEST))
    (root / "version.txt").write_text("v1")
    with FakeGitHub() as github:
        text = CONFIG.format(python=sys.executable, repo=github.repo, url=github.url)
        (root / "deployloop.toml").write_text(text)
        github.inject(Fault("POST", r"/comments$", status=None, delay=3.0))
        daemon = start(root, github)
        deadline = time.monotonic() + 60
        while not github.requests("POST", r"/comments$") and time.monotonic() < deadline:
            time.sleep(0.02)
        daemon.kill()  # the comment is stored; its answer is still on the way
        daemon.wait()
        print(f"killed while posting: {len(github.comments(1))} comment(s) on #1")
        again = start(root, github)
        print(f"resumed run exit {again.wait(60)}")
        bodies = Counter(github.comments(1))
    repeated = {body[:60]: n for body, n in bodies.items() if n > 1}
    if repeated:
        print(f"BUG: the same comment posted {max(repeated.values())} times on #1: {repeated}")
        return 1
    print("ok: every comment on #1 posted once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
