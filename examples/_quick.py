"""The ``--quick`` switch every example shares (the test suite runs the examples with it)."""

from __future__ import annotations

import argparse
import os


def example_parser(description: str, quick_help: str) -> argparse.ArgumentParser:
    """An argument parser with ``--quick`` (default on when ``FUSEKIT_EXAMPLES_QUICK=1``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("FUSEKIT_EXAMPLES_QUICK") == "1",
        help=quick_help,
    )
    return parser
