"""What changed between a cause's last good version and its first bad one, when versions are
commit SHAs of ``[target] source_repo``: GitHub's compare link and the commits between.

Asked only while a new issue's body is written, once per (last good, first bad) pair in a run,
so the API budget pays one request per new cause at most. A failing request costs the issue
its commit list, never the issue: the reason is kept for the log as a tracker warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from deployloop.errors import DeployloopError
from deployloop.issues.records import Compare

_SHA = re.compile(r"[0-9a-fA-F]{7,40}")


def is_sha(version: str | None) -> bool:
    """A commit SHA (7 to 40 hex digits), as versions are when they name the deployed commit."""
    return version is not None and _SHA.fullmatch(version) is not None


class CompareCache:
    """``(base, head) → Compare | None``: ``fetch`` once per SHA pair; None for non-SHAs,
    equal versions, or a failed fetch (its reason in ``warnings``)."""

    def __init__(self, fetch: Callable[[str, str], Compare]) -> None:
        self.fetch = fetch
        self.warnings: list[str] = []
        self._known: dict[tuple[str, str], Compare | None] = {}

    def __call__(self, base: str, head: str) -> Compare | None:
        if not (is_sha(base) and is_sha(head)) or base == head:
            return None
        if (base, head) not in self._known:
            self._known[base, head] = self._fetch(base, head)
        return self._known[base, head]

    def _fetch(self, base: str, head: str) -> Compare | None:
        try:
            return self.fetch(base, head)
        except DeployloopError as exc:  # TrackerError: the issue goes out without its commits
            self.warnings.append(f"commits {base[:12]}...{head[:12]} not listed: {exc}")
            return None
