"""What deployloop adds to a suite's wall time: ``run --once`` against plain pytest.

A generated 1000-test suite (quick tests, all passing) runs three ways, interleaved round by
round: plain ``python -m pytest --junitxml=x.xml``; the same pytest with exactly the arguments
deployloop adds (``-o junit_family=xunit1 -p deployloop_live``, progress file on); and the real
``deployloop run --once`` CLI with one phase, one suite, the local tracker and no reruns.

``overhead_ratio`` is the median of per-round ratios (CLI / plain pytest). The extra keys split
the difference (medians of per-round differences): ``overhead_in_suite_s`` is what the plugin
and its progress file cost inside pytest (per test: it grows with the test count), and
``overhead_fixed_s`` what the deployloop process costs around pytest (start-up and imports,
config, state, JUnit, logs: a constant per run). ``overhead_breakeven_suite_s`` is the plain
pytest wall time from which on these 1000 tests would meet the goal.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from deployloop.runner import PLUGIN_DIR, PLUGINS, PROGRESS_ENV
from tests.bench.common import (
    bench_env,
    interleaved,
    median,
    paired_ratio,
    pytest_command,
    run_quiet,
    write_suite,
)

GOALS = {"overhead_ratio": ("<=", 1.03)}

TESTS = 1000
ROUNDS = 9

CONFIG = """\
[session]
name = "bench"
logs_dir = "{logs}"

[target]
base_url = "http://127.0.0.1:9"

[[phase]]
name = "all"
  [[phase.suite]]
  name = "suite"
  run = "{run}"
  cwd = "{cwd}"

[issues]
tracker = "local"

[retest]
rerun_failed = false
"""


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = Path(tmp)
        suite = root / "suite"
        write_suite(suite, TESTS)
        config = root / "deployloop.toml"
        run = " ".join(pytest_command())
        config.write_text(CONFIG.format(logs=root / "logs", run=run, cwd=suite), encoding="utf-8")
        env = bench_env()
        plugin_env = {
            **env,
            "PYTHONPATH": str(PLUGIN_DIR),
            PROGRESS_ENV: str(root / "progress.jsonl"),
        }
        plain = [*pytest_command(), f"--junitxml={root / 'x.xml'}"]
        with_plugin = [*plain, "-o", "junit_family=xunit1", *PLUGINS.split()]
        cli = [str(Path(sys.executable).parent / "deployloop"), "run", "--once", "-c", str(config)]
        times = interleaved(
            {
                "pytest": lambda: run_quiet(plain, suite, env),
                "plugin": lambda: run_quiet(with_plugin, suite, plugin_env),
                "deployloop": lambda: run_quiet(cli, root, env),
            },
            ROUNDS,
        )

    def paired_s(subject: str, baseline: str) -> float:
        return median([s - b for s, b in zip(times[subject], times[baseline], strict=True)])

    overhead_s = paired_s("deployloop", "pytest")
    return {
        "overhead_ratio": paired_ratio(times["deployloop"], times["pytest"]),
        "overhead_deployloop_s": median(times["deployloop"]),
        "overhead_pytest_s": median(times["pytest"]),
        "overhead_s": overhead_s,
        "overhead_in_suite_s": paired_s("plugin", "pytest"),
        "overhead_fixed_s": paired_s("deployloop", "plugin"),
        # Both parts are per run or per test, not per second of testing: the same 1000 tests
        # taking longer each (real e2e tests do) meet the goal from this plain wall time on.
        "overhead_breakeven_suite_s": overhead_s / (GOALS["overhead_ratio"][1] - 1),
    }
