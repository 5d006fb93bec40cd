"""Placeholder: filled in by the maximize work of issue 5."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add the commands of this module."""
