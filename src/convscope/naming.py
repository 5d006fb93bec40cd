"""Helpers for names a user types: close-match suggestions for error messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> str:
    """``"; did you mean a, b?"`` for the closest candidates, or ``""`` when none is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.5)
    return f"; did you mean {', '.join(matches)}?" if matches else ""
