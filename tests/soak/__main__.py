"""``python -m tests.soak [--seed N]... [--seeds 5] [--iterations 50] [--jobs 2]``.

Each seed runs the real daemon for ``--iterations`` iterations under its own fault schedule;
seeds run ``--jobs`` at a time. Prints one line per invariant per seed and, when any fails,
the command that replays that seed. Exit 0 when every invariant held for every seed.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.soak.runner import SoakResult, SoakRun


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--seed", type=int, action="append", help="run this seed (repeatable)")
    parser.add_argument("--seeds", type=int, default=5, help="how many random seeds (default 5)")
    parser.add_argument("--iterations", type=int, default=50, help="per seed (default 50)")
    parser.add_argument("--jobs", type=int, default=2, help="seeds run at once (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory on success")
    parser.add_argument(
        "--real-pacing",
        action="store_true",
        help="keep the GitHub tracker's real 1 s write spacing and backoffs (much slower)",
    )
    parser.add_argument(
        "--mutant",
        choices=("leak", "duplicate", "harness"),
        help="break one promise in the daemon on purpose: the soak must FAIL",
    )
    return parser.parse_args(argv)


def report(result: SoakResult, iterations: int) -> list[str]:
    lines = [
        f"seed {result.seed}: {result.completed}/{result.iterations} iterations in "
        f"{result.elapsed_s:.0f} s, {result.sessions} sessions, "
        f"{result.daemon_starts} daemon starts"
    ]
    lines += [f"  {check.line()}" for check in result.checks]
    fired = ", ".join(f"{k}={v}" for k, v in sorted(result.tally.fired.items()))
    lines.append(f"  faults fired: {fired}")
    lines += [f"  skipped {reason}" for reason in result.skipped]
    if not result.passed:
        lines.append(f"  FAILED seed {result.seed}; evidence kept in {result.root}")
        lines.append(
            f"  replay: python -m tests.soak --seed {result.seed} --iterations {iterations}"
        )
    return lines


def main(argv: list[str]) -> int:
    args = parse(argv)
    seeds = args.seed or [random.randrange(1, 1_000_000) for _ in range(args.seeds)]
    print(
        f"soak: seeds {seeds}, {args.iterations} iterations each, {args.jobs} at a time", flush=True
    )
    started = time.monotonic()
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    def one(seed: int) -> SoakResult:
        say(f"seed {seed}: started")
        result = SoakRun(seed, args.iterations, log=say, keep=args.keep,
                         real_pacing=args.real_pacing, mutant=args.mutant).run()  # fmt: skip
        say("\n".join(report(result, args.iterations)))
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, seeds))
    failed = [r.seed for r in results if not r.passed]
    total = sum(r.completed for r in results)
    elapsed = time.monotonic() - started
    print(f"soak: {len(results)} seeds, {total} iterations in {elapsed:.0f} s; ", end="")
    if failed:
        print(f"FAILED seeds {failed}")
        for seed in failed:
            print(f"  replay: python -m tests.soak --seed {seed} --iterations {args.iterations}")
        return 1
    print("every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
