"""Keeping 2-D layouts comparable: Procrustes alignment, a shared scale, and how much a map moved.

A 2-D embedding is only defined up to rotation, reflection, translation and scale, so two
fits of almost the same data can come out mirrored or turned. Aligning each epoch's layout
to the previous one with an orthogonal Procrustes fit (rotation or reflection only) removes
that arbitrary motion and leaves the motion that the training caused.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes


def standardize(layout: np.ndarray) -> np.ndarray:
    """Centre a layout and scale it so the root-mean-square distance from the centre is 1.

    Every layout convscope draws is standardised, so maps of different models and
    epochs share one scale.
    """
    points = np.asarray(layout, dtype=np.float64)
    centred = points - points.mean(axis=0)
    rms = float(np.sqrt((centred**2).sum(axis=1).mean()))
    return centred / rms if rms > 0 else centred


def procrustes_align(reference: np.ndarray, layout: np.ndarray) -> np.ndarray:
    """``layout`` standardised, then turned (or mirrored) to lie as close as possible to ``reference``.

    Both arrays hold the same points in the same order (``N x 2``).
    """
    if reference.shape != layout.shape:
        raise ValueError(f"layouts differ in shape: {reference.shape} vs {layout.shape}")
    moving = standardize(layout)
    return moving @ procrustes_rotation(reference, moving)


def procrustes_rotation(reference: np.ndarray, layout: np.ndarray) -> np.ndarray:
    """The 2x2 orthogonal matrix that best turns standardised ``layout`` onto ``reference``."""
    rotation, _ = orthogonal_procrustes(standardize(layout), standardize(reference))
    return rotation


def movement(before: np.ndarray, after: np.ndarray) -> float:
    """How far the picture moved between two layouts: mean squared displacement, standardised.

    Unlike :func:`scipy.spatial.procrustes`' disparity, this does not rotate ``after``
    first, because a viewer sees the rotation too. 0 means the same picture.
    """
    return float(((standardize(before) - standardize(after)) ** 2).sum(axis=1).mean())
