"""Start-up: ``deployloop --help`` must feel instant, so heavy imports stay out of the way.

Median wall time of RUNS fresh processes, and its ratio to a bare ``python -c pass`` measured
in the same run (the part start-up costs that deployloop itself adds).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

GOALS = {"startup_s": ("<=", 0.3)}

RUNS = 9


def median_wall(command: list[str]) -> float:
    subprocess.run(command, capture_output=True, check=True, timeout=60)  # warm the disk cache
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, timeout=60)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure() -> dict[str, float]:
    entry = Path(sys.executable).parent / "deployloop"
    ours = median_wall([str(entry), "--help"])
    bare = median_wall([sys.executable, "-c", "pass"])
    return {
        "startup_s": ours,
        "startup_bare_python_s": bare,
        "startup_ratio_vs_bare_python": ours / bare,
    }
