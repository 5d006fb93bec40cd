"""Checking what callers hand the store before anything is written: epochs, metrics, arrays."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from convscope.store import files
from convscope.store.errors import StoreError

ArrayKey = tuple[str, str]


def config_json(config: Mapping[str, Any]) -> str:
    """The run's config as JSON text, or a clear error when it is not JSON-serialisable."""
    try:
        return json.dumps(dict(config), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"the run config must be plain JSON data (numbers, text, lists): {exc}"
        ) from exc


def check_epoch(epoch: Any) -> int:
    """``epoch`` as an int ≥ 0, or an error."""
    if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
        raise StoreError(
            f"epoch must be an integer ≥ 0 (0 is the state before training), not {epoch!r}"
        )
    return int(epoch)


def check_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    """``(name, value)`` pairs, NaN as None (SQLite stores NaN as NULL anyway)."""
    values = []
    for name, value in metrics.items():
        if not isinstance(name, str) or not name or name == "epoch":
            raise StoreError(f"metric name {name!r} must be a non-empty string other than 'epoch'")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"metric {name!r} must be a number, not {value!r}") from exc
        values.append((name, None if math.isnan(number) else number))
    return values


def check_arrays(arrays: Mapping[ArrayKey, Any] | None) -> list[tuple[str, str, np.ndarray]]:
    """``(kind, name, array)`` triples, validated before any file is written."""
    items = []
    for key, value in (arrays or {}).items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise StoreError(
                f"array keys are (kind, name) pairs such as ('snapshot', 'hidden'), not {key!r}"
            )
        kind, name = key
        check_array_key(kind, name)
        items.append((kind, name, files.as_array(kind, name, value)))
    return items


def check_array_key(kind: str, name: str) -> None:
    """Fail for an invalid kind or name, or for the reserved checkpoint kind."""
    files.check_kind(kind)
    files.file_stem(name)
    if kind == files.CHECKPOINT_KIND:
        raise StoreError("the kind 'checkpoint' is reserved for commit_epoch's checkpoint argument")
