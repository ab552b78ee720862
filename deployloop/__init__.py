"""deployloop: run staging e2e suites phase by phase, file one issue per root cause, retest."""

__version__ = "0.1.0"
