"""Every test runs in its own working directory with a clean deployloop environment."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real config, logs or state."""
    for name in ("DEPLOYLOOP_CONFIG", "DEPLOYLOOP_STATE_DIR", "GITHUB_TOKEN", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
