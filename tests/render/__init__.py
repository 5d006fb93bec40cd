"""Hand-made run results with known numbers for the render tests."""

from __future__ import annotations

import numpy as np

from convscope.store.results import RunResult, StudyResult

CLASSES = ("cat", "dog", "bird")


def make_run(
    model: str,
    *,
    offset: float = 0.0,
    confusion: np.ndarray | None = None,
    test_acc: float | None = 0.8,
    name: str | None = None,
) -> RunResult:
    """A four-point run (epochs 0-3) whose curves are simple known arrays."""
    return RunResult(
        run_id=f"id-{model}-{offset}",
        name=name or f"{model}-run",
        model=model,
        params=1234,
        epochs=np.arange(4),
        train_loss=np.array([np.nan, 1.0, 0.6, 0.4]) + offset,
        train_acc=np.array([np.nan, 0.5, 0.7, 0.8]) + offset,
        val_loss=np.array([2.0, 1.1, 0.8, 0.7]) + offset,
        val_acc=np.array([0.3, 0.45, 0.65, 0.6]) + offset,
        class_names=CLASSES,
        test_loss=0.5 + offset,
        test_acc=test_acc,
        seconds_per_epoch=2.5,
        confusion=confusion,
    )


def confusion(scale: int = 1) -> np.ndarray:
    """A 3-class matrix with unequal rows: accuracy (8+5+9)/30."""
    return np.array([[8, 1, 1], [2, 5, 3], [0, 1, 9]]) * scale


def make_study() -> StudyResult:
    """Four study models with different test accuracies and confusion matrices."""
    runs = [
        make_run("sequential", offset=0.0, confusion=confusion(1), test_acc=0.70),
        make_run("inception", offset=0.01, confusion=confusion(2), test_acc=0.80),
        make_run("residual", offset=0.02, confusion=confusion(3), test_acc=0.75),
        make_run("inception-residual", offset=0.03, confusion=None, test_acc=None),
    ]
    settings = {"epochs": 3, "batch_size": 32, "optimizer": "adam", "seed": 7}
    return StudyResult(name="toy study", dataset="toy", runs=runs, settings=settings)
