"""Where a loaded config's files are: every relative path anchored at one base directory.

The base is the config file's directory (``config.load``), so ``-c /abs/deployloop.toml`` finds
the same logs, state, suites and trigger from any working directory. The run and trigger
templates (``${NAME}`` unexpanded, for display) are taken from the raw TOML here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployloop.config_schema import Config, SuiteConfig


def finished(config: Config, raw: dict[str, Any], base: Path) -> Config:
    """``config`` with its run templates from ``raw`` and every path anchored at ``base``."""
    phases = [
        phase.model_copy(
            update={
                "suites": [
                    _anchored_suite(suite, base, raw_suite["run"])
                    for suite, raw_suite in zip(
                        phase.suites, raw_phase.get("suite", []), strict=True
                    )
                ]
            }
        )
        for phase, raw_phase in zip(config.phases, raw["phase"], strict=True)
    ]
    update: dict[str, Any] = {
        "phases": phases,
        "session": config.session.model_copy(
            update={"logs_dir": str(_under(base, config.session.logs_dir))}
        ),
    }
    if config.issues.dir is not None:
        update["issues"] = config.issues.model_copy(
            update={"dir": str(_under(base, config.issues.dir))}
        )
    if config.metrics is not None:
        update["metrics"] = config.metrics.model_copy(
            update={"textfile": str(_under(base, config.metrics.textfile))}
        )
    if config.executor.ca is not None:
        update["executor"] = config.executor.model_copy(
            update={
                key: str(_under(base, getattr(config.executor, key)))
                for key in ("ca", "cert", "key")
            }
        )
    if config.redeploy is not None:
        update["redeploy"] = config.redeploy.model_copy(
            update={
                "cwd": str(_under(base, config.redeploy.cwd)),
                "trigger_template": raw["redeploy"].get("trigger"),
            }
        )
    return config.model_copy(update=update)


def _anchored_suite(suite: SuiteConfig, base: Path, template: str) -> SuiteConfig:
    cwd = _under(base, suite.cwd)
    junit = str(_under(cwd, suite.junit)) if suite.junit else None
    return suite.model_copy(update={"cwd": str(cwd), "junit": junit, "run_template": template})


def _under(base: Path, path: str | None) -> Path:
    """``path`` (``~`` expanded) from ``base``, normalised; ``base`` itself for None."""
    if path is None:
        return base
    return Path(os.path.normpath(base / os.path.expanduser(path)))
