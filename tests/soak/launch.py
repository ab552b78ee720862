"""The real ``deployloop`` CLI with one promise broken on purpose (``--mutant``).

The soak runs plain ``python -m deployloop``; this entry is only for showing that each
invariant check catches the break it is there for. Run by path so the daemon's command line
names the soak's directory and needs no PYTHONPATH.
"""

from __future__ import annotations

import os
import sys


def plant_mutant(name: str) -> None:
    """Break one promise on purpose (``--mutant``): the soak must then report a FAIL."""
    from deployloop import redact, runner
    from deployloop.issues import github

    # Replacing a method is the point of a mutant: hence the method-assign ignores below.
    if name == "leak":  # nothing is redacted, neither texts nor streamed output
        redact.Redactor.redact = lambda self, text: text  # type: ignore[method-assign]
        redact.Redactor.byte_spans = lambda self, data: []  # type: ignore[method-assign]
    elif name == "duplicate":  # the marker lookup finds nothing: every create files anew
        github.GitHubTracker.existing = lambda self: {}  # type: ignore[method-assign]
    elif name == "harness":  # a broken harness passes as a result
        runner._runner_error = lambda *args: None  # no exit code or bad JUnit file is an error
    else:
        raise SystemExit(f"unknown mutant {name!r}")


def main() -> None:
    if sys.path and os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
        del sys.path[0]  # run by path: the soak's own modules must not shadow anything
    if os.environ.get("SOAK_MUTANT"):
        plant_mutant(os.environ["SOAK_MUTANT"])
    from deployloop.__main__ import main as deployloop_main

    sys.argv[0] = "deployloop"
    deployloop_main()


if __name__ == "__main__":
    main()
