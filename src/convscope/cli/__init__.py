"""The command-line interface: thin wrappers that parse, call the API and print."""

from __future__ import annotations

import sys

from convscope.cli.app import main as _main


def main() -> None:
    """Console-script entry point."""
    sys.exit(_main())


__all__ = ["main"]
