"""Stratified, seeded index selection and validation splits."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.data.sampling import stratified_indices, stratified_split
from convscope.errors import DataError


def make_labels() -> np.ndarray:
    """Shuffled labels: class 0 x 50, class 1 x 30, class 2 x 20."""
    labels = np.repeat(np.arange(3), [50, 30, 20])
    return np.random.default_rng(123).permutation(labels)


def test_counts_per_class_and_order() -> None:
    labels = make_labels()
    idx = stratified_indices(labels, 5, seed=1)
    assert idx.dtype == np.int64 and idx.size == 15
    assert np.bincount(labels[idx]).tolist() == [5, 5, 5]
    assert labels[idx].tolist() == sorted(labels[idx].tolist())
    for c in range(3):
        chosen = idx[labels[idx] == c]
        assert (np.diff(chosen) > 0).all()  # sorted, no repeats


def test_deterministic_per_seed() -> None:
    labels = make_labels()
    a = stratified_indices(labels, 5, seed=7)
    np.testing.assert_array_equal(a, stratified_indices(labels, 5, seed=7))
    assert not np.array_equal(a, stratified_indices(labels, 5, seed=8))


def test_classes_subset() -> None:
    labels = make_labels()
    idx = stratified_indices(labels, 4, classes=[2, 0])
    assert sorted(set(labels[idx].tolist())) == [0, 2]
    assert labels[idx].tolist() == [0] * 4 + [2] * 4


def test_too_few_items_is_an_error() -> None:
    with pytest.raises(DataError, match=r"class 2 has only 20 items.*at most 20"):
        stratified_indices(make_labels(), 25)
    with pytest.raises(DataError, match="class 5 has only 0"):
        stratified_indices(make_labels(), 1, classes=[5])


def test_not_strict_takes_all() -> None:
    labels = make_labels()
    idx = stratified_indices(labels, 25, strict=False)
    assert np.bincount(labels[idx]).tolist() == [25, 25, 20]


def test_accepts_lists_and_rejects_bad_input() -> None:
    assert stratified_indices([0, 1, 0, 1], 1).size == 2
    with pytest.raises(DataError, match="at least 1"):
        stratified_indices([0, 1], 0)
    with pytest.raises(DataError, match="integers"):
        stratified_indices(np.array([0.5, 1.0]), 1)
    with pytest.raises(DataError, match="1-D"):
        stratified_indices(np.zeros((2, 2), dtype=int), 1)
    with pytest.raises(DataError, match="non-empty"):
        stratified_indices([], 1)


def test_split_proportions_and_coverage() -> None:
    labels = make_labels()
    train, val = stratified_split(labels, 0.2, seed=3)
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert np.bincount(labels[val]).tolist() == [10, 6, 4]
    assert np.bincount(labels[train]).tolist() == [40, 24, 16]
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(labels.size))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()


def test_split_deterministic_per_seed() -> None:
    labels = make_labels()
    a = stratified_split(labels, 0.3, seed=0)
    b = stratified_split(labels, 0.3, seed=0)
    c = stratified_split(labels, 0.3, seed=1)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_split_keeps_a_training_item_per_class() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2])
    train, val = stratified_split(labels, 0.9)
    assert set(labels[train].tolist()) == {0, 1, 2}
    assert np.bincount(labels[val], minlength=3).tolist() == [1, 2, 0]


def test_split_errors() -> None:
    with pytest.raises(DataError, match="between 0 and 1"):
        stratified_split([0, 1], 1.0)
    with pytest.raises(DataError, match="between 0 and 1"):
        stratified_split([0, 1], 0.0)
    with pytest.raises(DataError, match="no validation items"):
        stratified_split([0, 0, 1, 1], 0.01)
