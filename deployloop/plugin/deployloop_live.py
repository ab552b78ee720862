"""pytest plugin loaded by deployloop with ``-p deployloop_live``: streams per-test progress.

Standard library only: it runs inside the suite's own environment, where deployloop's
dependencies may not be installed. Each line of $DEPLOYLOOP_PROGRESS is one JSON object:
``collected`` (count) once, then per test ``start`` (id) and ``test`` (id, outcome).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

_handle: Any = None


def _write(record: dict[str, Any]) -> None:
    if _handle is not None:
        _handle.write(json.dumps(record) + "\n")
        _handle.flush()


def pytest_configure(config: Any) -> None:
    global _handle
    path = os.environ.get("DEPLOYLOOP_PROGRESS")
    if path and not hasattr(config, "workerinput"):  # xdist workers report through the controller
        _handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in pytest_unconfigure


def pytest_collection_finish(session: Any) -> None:
    _write({"event": "collected", "count": len(session.items), "ts": time.time()})


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    # The live view names the test that is running now, not only the last one that finished.
    _write({"event": "start", "id": nodeid, "ts": time.time()})


def pytest_runtest_logreport(report: Any) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = (
            report.outcome if report.when == "call" else ("error" if report.failed else "skipped")
        )
        _write({"event": "test", "id": report.nodeid, "outcome": outcome, "ts": time.time()})


def pytest_unconfigure(config: Any) -> None:
    global _handle
    if _handle is not None:
        _handle.close()
        _handle = None
