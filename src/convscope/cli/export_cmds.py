"""Placeholder: filled in by the export work of issue 7."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add the commands of this module."""
