"""2-D maps of a hidden layer, one per epoch, that do not flip and jump from epoch to epoch.

Methods: UMAP (umap-learn), PCA and t-SNE (scikit-learn). Alignment across epochs: each
epoch's fit starts from the previous epoch's layout (UMAP and t-SNE take an ``init``
array), and the result is then Procrustes-aligned to that layout (PCA, whose axes can
swap sign between epochs, gets the Procrustes step only).

Why not AlignedUMAP: it fits all epochs jointly, so every new epoch of a running
training would refit the whole sequence, and its cost grows with the number of epochs.
Initialising from the previous layout keeps one UMAP fit per epoch, lets results be
cached per epoch, and in the test suite moves consecutive maps less than independent
fits do (see ``tests/embed/test_projection.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from convscope.embed.alignment import procrustes_rotation
from convscope.embed.constants import METHODS
from convscope.errors import ConvscopeError


@dataclass(frozen=True)
class ProjectionParams:
    """How a map is made; ``key()`` names it in the cache, so any change makes a new entry.

    ``n_neighbors=40`` is the reference's UMAP setting; ``aligned`` switches the
    epoch-to-epoch initialisation and Procrustes alignment on.
    """

    method: str = "umap"
    n_neighbors: int = 40
    min_dist: float = 0.1
    perplexity: float = 30.0
    seed: int = 0
    aligned: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConvscopeError(
                f"unknown embedding method {self.method!r}; use {', '.join(METHODS)}"
            )
        if self.n_neighbors < 2:
            raise ConvscopeError("n_neighbors must be at least 2")
        if self.perplexity <= 0:
            raise ConvscopeError("perplexity must be positive")
        if not 0 <= self.min_dist <= 1:
            raise ConvscopeError(f"min_dist must be from 0 to 1, got {self.min_dist:g}")
        if not 0 <= self.seed < 2**32:
            raise ConvscopeError(f"the seed must be from 0 to 2**32 - 1, got {self.seed}")

    def relevant(self) -> dict[str, Any]:
        """The parameters that change this method's result."""
        data = asdict(self)
        if self.method != "umap":
            data.pop("n_neighbors")
            data.pop("min_dist")
        if self.method != "tsne":
            data.pop("perplexity")
        if self.method == "pca":
            data.pop("seed")
        return data

    def key(self) -> str:
        """A short stable name of these parameters, e.g. ``umap-3f2a9c1b``."""
        text = json.dumps(self.relevant(), sort_keys=True)
        return f"{self.method}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


class Projector(TransformerMixin, BaseEstimator):
    """A scikit-learn style 2-D projector: ``fit``, ``transform``, ``embedding_``.

    The layout is standardised (centred, unit RMS radius) and, given ``reference``,
    Procrustes-aligned to it; :meth:`transform` places new points with the same
    reducer, shift, scale and rotation (UMAP and PCA; t-SNE has no transform).
    """

    def __init__(
        self,
        method: str = "umap",
        n_neighbors: int = 40,
        min_dist: float = 0.1,
        perplexity: float = 30.0,
        random_state: int = 0,
        init: np.ndarray | None = None,
        reference: np.ndarray | None = None,
    ) -> None:
        self.method = method
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.perplexity = perplexity
        self.random_state = random_state
        self.init = init
        self.reference = reference

    def fit(self, X: np.ndarray, y: Any = None) -> Projector:
        """Fit the reducer on ``X`` (``N x D``) and fix the standardising transform."""
        x = _as_matrix(X)
        if self.method == "pca":
            from sklearn.decomposition import PCA

            self.reducer_ = PCA(n_components=2, random_state=0)
            raw = self.reducer_.fit_transform(x)
        elif self.method == "tsne":
            self.reducer_ = None
            raw = _tsne(x, self.perplexity, self.random_state, self.init)
        elif self.method == "umap":
            self.reducer_ = _umap(x, self.n_neighbors, self.min_dist, self.random_state, self.init)
            raw = self.reducer_.embedding_
        else:
            raise ConvscopeError(
                f"unknown embedding method {self.method!r}; use {', '.join(METHODS)}"
            )
        self.center_ = raw.mean(axis=0)
        self.scale_ = _rms_radius(raw - self.center_)
        self.rotation_ = np.eye(2)
        layout = self._place(raw)
        if self.reference is not None:
            self.rotation_ = procrustes_rotation(self.reference, layout)
            layout = layout @ self.rotation_
        self.embedding_ = layout
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new points (``M x D``) in the fitted layout."""
        if self.reducer_ is None:
            raise ConvscopeError("t-SNE cannot place new points; use --method umap or pca")
        raw = self.reducer_.transform(_as_matrix(X, minimum=1))
        return self._place(raw) @ self.rotation_

    def fit_transform(self, X: np.ndarray, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit, and return the layout of ``X`` itself."""
        return self.fit(X).embedding_

    def _place(self, raw: np.ndarray) -> np.ndarray:
        return (np.asarray(raw, dtype=np.float64) - self.center_) / self.scale_


def fit_layout(
    features: np.ndarray,
    params: ProjectionParams,
    init: np.ndarray | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """One standardised ``N x 2`` layout of ``features`` (``N x D``), optionally from ``init``."""
    return Projector(
        method=params.method,
        n_neighbors=params.n_neighbors,
        min_dist=params.min_dist,
        perplexity=params.perplexity,
        random_state=params.seed,
        init=init,
        reference=reference,
    ).fit_transform(features)


def project_epochs(
    features: Mapping[int, np.ndarray],
    params: ProjectionParams,
    *,
    previous: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[int, np.ndarray]:
    """Layouts for every epoch in order; with ``params.aligned`` each continues the one before.

    ``previous`` is the aligned layout of the epoch before the first one given (to
    continue a cached sequence); ``progress(epoch)`` is called after each epoch.
    """
    layouts: dict[int, np.ndarray] = {}
    for epoch in sorted(features):
        before = previous if params.aligned else None
        layouts[epoch] = fit_layout(features[epoch], params, init=before, reference=before)
        previous = layouts[epoch]
        if progress is not None:
            progress(epoch)
    return layouts


def _as_matrix(features: np.ndarray, minimum: int = 5) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    x = x.reshape(len(x), -1)
    if len(x) < minimum:
        raise ConvscopeError(f"need at least {minimum} points to embed, got {len(x)}")
    if not np.isfinite(x).all():
        raise ConvscopeError("the layer outputs contain NaN or infinity; the run diverged")
    return x


def _rms_radius(centred: np.ndarray) -> float:
    rms = float(np.sqrt((centred**2).sum(axis=1).mean()))
    return rms if rms > 0 else 1.0


def _checked(what: str, value: float, points: int, option: str) -> Any:
    """``value`` if it is below the number of points; else a one-line error with a fix."""
    if value < points:
        return value
    raise ConvscopeError(
        f"{what} {value:g} needs more points than the {points} mapped; use {option} "
        f"{max(2, (points - 1) // 3)} or record more probe images (--probe-per-class)"
    )


def _umap(
    x: np.ndarray, n_neighbors: int, min_dist: float, seed: int, init: np.ndarray | None
) -> Any:
    import warnings

    import umap

    start: Any = "spectral" if init is None else init * 10.0  # UMAP works on a scale of ~10
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=_checked("UMAP n_neighbors", n_neighbors, len(x), "--n-neighbors"),
        min_dist=min_dist,
        init=start,
        random_state=seed,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # UMAP warns that a seed disables parallelism
        return reducer.fit(x)


def _tsne(x: np.ndarray, perplexity: float, seed: int, init: np.ndarray | None) -> np.ndarray:
    from sklearn.manifold import TSNE

    # scikit-learn's own PCA initialisation is scaled to a standard deviation of 1e-4
    start: Any = "pca" if init is None else init * (1e-4 / init[:, 0].std())
    perplexity = _checked("t-SNE perplexity", perplexity, len(x), "--perplexity")
    tsne = TSNE(n_components=2, perplexity=perplexity, init=start, random_state=seed)
    return tsne.fit_transform(x)
