"""``make bench``: run every tests/bench/bench_*.py, print a table, write logs/bench.json.

Each module exposes ``GOALS`` ({key: (comparison, goal)}) and ``measure() -> dict[str, float]``.
Figures are ratios against a baseline measured in the same run, or counts: these machines are
noisy, absolute times mean little.
"""

from __future__ import annotations

import importlib
import json
import operator
import pkgutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import tests.bench as package

COMPARE = {"<=": operator.le, ">=": operator.ge}


def main(argv: list[str]) -> int:
    selected = set(argv)
    figures: dict[str, float] = {}
    goals: dict[str, tuple[str, float]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("bench_") or (selected and info.name not in selected):
            continue
        module = importlib.import_module(f"tests.bench.{info.name}")
        started = time.monotonic()
        figures.update(module.measure())
        goals.update(module.GOALS)
        print(f"{info.name}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    table = Table("figure", "value", "goal", "holds")
    verdicts: dict[str, bool] = {}
    for key, value in figures.items():
        if key in goals:
            op, goal = goals[key]
            verdicts[key] = COMPARE[op](value, goal)
            table.add_row(key, f"{value:.3f}", f"{op} {goal}", "yes" if verdicts[key] else "NO")
        else:
            table.add_row(key, f"{value:.3f}", "", "")
    Console().print(table)
    out = Path("logs") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({**figures, "goals_met": verdicts}, indent=2) + "\n")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
