"""Plain results of runs and studies, shared by the trainer, the store and the renderers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunResult:
    """What one trained run shows in a study: curves, final numbers, confusion matrix.

    Curve arrays are aligned with ``epochs`` (which starts at 0, the state before
    any update); a value that does not exist (train loss at epoch 0) is NaN.
    ``confusion`` has true classes in rows and predicted classes in columns.
    """

    run_id: str
    name: str
    model: str
    params: int
    epochs: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    class_names: tuple[str, ...]
    test_loss: float | None = None
    test_acc: float | None = None
    seconds_per_epoch: float | None = None
    confusion: np.ndarray | None = None


@dataclass(frozen=True)
class StudyResult:
    """Several runs trained with the same settings on one dataset."""

    name: str
    dataset: str
    runs: list[RunResult]
    settings: dict[str, Any] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        from convscope.render.study import study_html

        return study_html(self)
