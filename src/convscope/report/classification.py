"""Per-class precision, recall and F1 from a test-set confusion matrix.

The numbers scikit-learn's ``classification_report`` gives (which the architectures
reference prints), computed from the confusion matrix a run stores, so no predictions
need to be kept: precision is a column's diagonal share, recall a row's, F1 their
harmonic mean; an undefined ratio (a class never predicted) is 0, as with
``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_report(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """``{"classes": [{"class", "precision", "recall", "f1", "support"}], "accuracy",
    "macro_avg", "weighted_avg"}`` for a confusion matrix (true classes in rows)."""
    counts = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(counts)
    predicted, support = counts.sum(axis=0), counts.sum(axis=1)
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    names = list(class_names) + [str(i) for i in range(len(class_names), len(counts))]
    classes = [
        {
            "class": names[i],
            "precision": round(float(precision[i]), 4),
            "recall": round(float(recall[i]), 4),
            "f1": round(float(f1[i]), 4),
            "support": int(support[i]),
        }
        for i in range(len(counts))
    ]
    total = float(support.sum())
    weights = support / total if total else np.zeros_like(support)

    def average(w: np.ndarray) -> dict[str, float]:
        return {
            "precision": round(float((precision * w).sum()), 4),
            "recall": round(float((recall * w).sum()), 4),
            "f1": round(float((f1 * w).sum()), 4),
        }

    return {
        "classes": classes,
        "accuracy": round(float(hits.sum() / total), 4) if total else 0.0,
        "macro_avg": average(np.full(len(counts), 1 / max(1, len(counts)))),
        "weighted_avg": average(weights),
    }


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), 0.0)
