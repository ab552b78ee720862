"""Entry point for ``deployloop`` and ``python -m deployloop``."""

from __future__ import annotations


def main() -> None:
    from deployloop.cli import app

    app()


if __name__ == "__main__":
    main()
