"""Regression (found by the soak, now fixed): SIGTERM while the GitHub tracker backed off was
not honoured until the tracker gave up — 30 s for a 5xx outage, up to 5 minutes behind a limit.

``python -m tests.soak.regression_sigterm_in_backoff``: the real CLI, the real retry policy,
GitHub answering 503 to everything. Exit 1 when the run takes more than 10 s to end after
SIGTERM, 0 when it ends promptly with 143.

The tracker sleeps through its backoffs on a private clock (``SystemClock`` waits on an event
nobody sets), so the stop event that SIGTERM sets is only looked at again once the tracker has
spent its retries (RetryPolicy: 2 + 4 + 8 + 16 s; ``max_wait`` 300 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
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

[retest]
rerun_failed = false
"""


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="deployloop-repro-"))
    (root / "test_search.py").write_text(textwrap.dedent(TEST))
    with FakeGitHub() as github:
        text = CONFIG.format(python=sys.executable, repo=github.repo, url=github.url)
        (root / "deployloop.toml").write_text(text)
        github.inject(Fault.down())
        with open(root / "out.log", "ab") as out:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "deployloop", "run", "--once"],
                cwd=root,
                env={**os.environ, "GITHUB_TOKEN": github.token},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 60
        while not github.requests() and time.monotonic() < deadline:
            time.sleep(0.02)  # the first GitHub call: the tracker is now in its retry loop
        sent = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(400)
        took = time.monotonic() - sent
    print(f"SIGTERM during the GitHub backoff: exit {code} after {took:.1f} s")
    if took > 10:
        print("BUG: SIGTERM waited for the tracker's retries to run out")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
