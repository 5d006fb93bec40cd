"""Small helpers on kernel arrays shared by the kernel modules (no imports among them).

``weights``, ``display``, ``health``, ``response`` and ``epochs`` all read kernels as
``out x in x H x W`` arrays; what they share lives here, so none imports another's
private helpers and the modules form no cycle.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def finite_kernels(values: np.ndarray) -> np.ndarray:
    """Whether each kernel (first axis) is entirely finite."""
    return np.isfinite(values.reshape(len(values), -1)).all(axis=1)


def pair(value: Any) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(2, 1)`` stays."""
    if isinstance(value, int):
        return int(value), int(value)
    first, second = (int(v) for v in value)
    return first, second


def default_channel_order(in_channels: int, input_order: str | None) -> str | None:
    """How to read a kernel's input channels: gray (one), the model's RGB/BGR (three), None."""
    if in_channels == 1:
        return "gray"
    if in_channels == 3:
        return input_order or "RGB"
    return None
