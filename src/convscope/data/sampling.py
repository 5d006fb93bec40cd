"""Seeded, stratified choices of dataset indices (probe sets, validation splits)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from convscope.errors import DataError


def stratified_indices(
    labels: np.ndarray | Iterable[int],
    per_class: int,
    *,
    seed: int = 0,
    classes: Iterable[int] | None = None,
    strict: bool = True,
) -> np.ndarray:
    """Pick ``per_class`` random indices of each class, reproducibly from ``seed``.

    The result is int64, ordered by class, then by index, so that plots built from it
    group classes together. ``classes`` restricts the pick (default: every label
    present). A class with fewer than ``per_class`` items is an error, or with
    ``strict=False`` contributes all its items.
    """
    labels = _check_labels(labels)
    if per_class < 1:
        raise DataError(f"per_class must be at least 1, got {per_class}")
    wanted = np.unique(labels) if classes is None else np.unique(np.asarray(list(classes)))
    members = [np.flatnonzero(labels == c) for c in wanted]
    if strict:
        _check_counts(wanted, members, per_class)
    rng = np.random.default_rng(seed)
    picks = [np.sort(rng.choice(idx, min(per_class, idx.size), replace=False)) for idx in members]
    return _concat(picks)


def stratified_split(
    labels: np.ndarray | Iterable[int], fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into ``(train, val)`` with ``fraction`` of every class in ``val``.

    Each class of ``n`` items gives ``round(fraction * n)`` to validation, at most
    ``n - 1`` so that every class keeps a training item. Both arrays are int64 and
    sorted; together they hold every index exactly once.
    """
    labels = _check_labels(labels)
    if not 0.0 < fraction < 1.0:
        raise DataError(
            f"the validation fraction must be between 0 and 1 (exclusive), got {fraction}"
        )
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = min(round(fraction * idx.size), idx.size - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    val_idx = np.sort(_concat(val))
    if val_idx.size == 0:
        raise DataError(
            f"a validation fraction of {fraction} leaves no validation items among "
            f"{labels.size} labels; use a larger fraction or more data"
        )
    return np.sort(_concat(train)), val_idx


def _check_labels(labels: np.ndarray | Iterable[int]) -> np.ndarray:
    """Labels as a non-empty 1-D integer array."""
    arr = np.asarray(labels) if hasattr(labels, "__len__") else np.asarray(list(labels))
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"labels must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"labels must be integers (class indices), got {arr.dtype}")
    return arr


def _check_counts(classes: np.ndarray, members: list[np.ndarray], per_class: int) -> None:
    """Raise naming the smallest class when one has fewer than ``per_class`` items."""
    counts = np.array([idx.size for idx in members])
    smallest = int(np.argmin(counts))
    if counts[smallest] < per_class:
        raise DataError(
            f"class {int(classes[smallest])} has only {int(counts[smallest])} items, fewer "
            f"than the {per_class} per class asked for; ask for at most "
            f"{int(counts[smallest])} per class"
        )


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate index arrays as int64 (empty when there are none)."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(parts).astype(np.int64)


def stratified_sample(labels: np.ndarray | Iterable[int], n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` indices spread as evenly as the classes allow, reproducibly from ``seed``.

    Every class gets ``n // k`` items (``k`` classes), the remainder going to classes
    drawn at random; a class with too few items gives all it has and the others make
    up the rest. Negative labels (no label) count as one more class. The result is
    int64, ordered by class, then by index; ``n`` at least the number of labels gives
    every index.
    """
    labels = _check_labels(labels)
    if n < 1:
        raise DataError(f"the sample size must be at least 1, got {n}")
    if n >= labels.size:
        return np.arange(labels.size, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    quota = np.zeros(classes.size, dtype=np.int64)
    order = rng.permutation(classes.size)
    left = n
    while left:
        for k in order:
            if left and quota[k] < members[k].size:
                quota[k] += 1
                left -= 1
    picks = [np.sort(idx[:q]) for idx, q in zip(members, quota, strict=True) if q]
    return _concat(picks)
