"""Numbers for "which model separates the classes better", per run, layer and epoch.

All from scikit-learn, on the probe set: k-NN accuracy in the hidden space and in the
2-D map (5-fold stratified cross-validation), silhouette of the classes in the hidden
space, trustworthiness of the map (how well it keeps hidden-space neighbourhoods) and
linear-probe accuracy (cross-validated logistic regression on standardised features).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

SCORE_NAMES = ("knn_hidden", "knn_map", "silhouette", "trustworthiness", "linear_probe")
SCORE_LABELS = {
    "knn_hidden": "k-NN accuracy (hidden space)",
    "knn_map": "k-NN accuracy (2-D map)",
    "silhouette": "silhouette (hidden space)",
    "trustworthiness": "trustworthiness of the map",
    "linear_probe": "linear-probe accuracy",
}


@dataclass(frozen=True)
class SeparationScores:
    """The five separation scores of one layout (see the module docstring)."""

    knn_hidden: float
    knn_map: float
    silhouette: float
    trustworthiness: float
    linear_probe: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready, rounded to 4 places."""
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


def separation_scores(
    hidden: np.ndarray, layout: np.ndarray, labels: np.ndarray, *, k: int = 10, seed: int = 0
) -> SeparationScores:
    """Score how well ``hidden`` (``N x D``) and its map ``layout`` (``N x 2``) separate ``labels``.

    The BLAS/OpenMP pools are held to one thread: on a probe set of this size the
    solvers' many small calls run about 20x faster single-threaded here (0.4 s
    against 7 s per epoch on 2 cores, measured).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _separation_scores(hidden, layout, labels, k=k, seed=seed)


def _separation_scores(
    hidden: np.ndarray, layout: np.ndarray, labels: np.ndarray, *, k: int, seed: int
) -> SeparationScores:
    from sklearn.manifold import trustworthiness
    from sklearn.metrics import silhouette_score

    x = np.asarray(hidden, dtype=np.float64).reshape(len(hidden), -1)
    y = np.asarray(labels)
    neighbours = min(k, len(x) // 2 - 1)
    silhouette = float(silhouette_score(x, y)) if len(np.unique(y)) > 1 else 0.0
    return SeparationScores(
        knn_hidden=knn_accuracy(x, y, k=k, seed=seed),
        knn_map=knn_accuracy(layout, y, k=k, seed=seed),
        silhouette=silhouette,
        trustworthiness=float(trustworthiness(x, layout, n_neighbors=neighbours)),
        linear_probe=linear_probe_accuracy(x, y, seed=seed),
    )


def knn_accuracy(x: np.ndarray, labels: np.ndarray, *, k: int = 10, seed: int = 0) -> float:
    """Cross-validated accuracy of a k-nearest-neighbour classifier on ``x``."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = _folds(labels, seed)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), x, labels, cv=folds).mean())


def linear_probe_accuracy(x: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """Cross-validated accuracy of logistic regression on standardised ``x``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return float(cross_val_score(probe, x, labels, cv=_folds(labels, seed)).mean())


def mean_and_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The mean of ``values`` and the half-width of its Student-t confidence interval.

    One value has no interval (half-width 0).
    """
    from scipy import stats

    data = np.asarray(values, dtype=np.float64)
    mean = float(data.mean())
    if len(data) < 2:
        return mean, 0.0
    sem = float(data.std(ddof=1) / np.sqrt(len(data)))
    return mean, float(sem * stats.t.ppf((1 + confidence) / 2, len(data) - 1))


def _folds(labels: np.ndarray, seed: int):
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(np.unique(labels, return_inverse=True)[1]).min())
    return StratifiedKFold(n_splits=max(2, min(5, smallest)), shuffle=True, random_state=seed)
