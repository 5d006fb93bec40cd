"""An in-memory image dataset: uint8 pixels, integer labels and class names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ArrayDataset:
    """One split of a dataset held as arrays.

    ``images`` is uint8 ``N x H x W`` (gray) or ``N x H x W x C``; ``labels`` is int64 ``N``.
    Batches are built by indexing these arrays, never through a per-item Dataset.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return (
            f"ArrayDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"image_shape={tuple(self.images.shape[1:])}, classes={len(self.class_names)}, "
            f"source={self.source!r})"
        )
