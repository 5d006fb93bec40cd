"""Maps per epoch: standardised, aligned (they move less than independent fits), placeable."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from convscope.embed.alignment import movement, procrustes_align, standardize
from convscope.embed.projection import ProjectionParams, Projector, project_epochs
from convscope.errors import ConvscopeError


def _clusters(n_per_class: int = 30, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, dim)) * 3
    labels = np.repeat(np.arange(10), n_per_class)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def _training_epochs(n_epochs: int = 4) -> dict[int, np.ndarray]:
    """Hidden features whose classes separate more each epoch, in a basis that keeps turning.

    Training changes which hidden units carry which direction, so each epoch gets a
    random orthogonal change of basis: it moves nothing a map should show.
    """
    base, _ = _clusters()
    rng = np.random.default_rng(1)
    epochs = {}
    for epoch in range(n_epochs):
        basis, _ = np.linalg.qr(rng.normal(size=(base.shape[1], base.shape[1])))
        noise = rng.normal(size=base.shape) * (2.0 - 0.4 * epoch)
        epochs[epoch] = (base + noise) @ basis
    return epochs


def _mean_movement(layouts: dict[int, np.ndarray]) -> float:
    epochs = sorted(layouts)
    return float(np.mean([movement(layouts[a], layouts[b]) for a, b in pairwise(epochs)]))


def test_standardize_centres_and_scales() -> None:
    layout = standardize(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 4.0]]))
    np.testing.assert_allclose(layout.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(np.sqrt((layout**2).sum(axis=1).mean()), 1.0)


def test_procrustes_undoes_a_rotation_and_a_mirror() -> None:
    rng = np.random.default_rng(0)
    layout = standardize(rng.normal(size=(50, 2)))
    angle = 1.1
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mirrored = (layout @ turn) * np.array([1.0, -1.0]) * 7 + 3
    assert movement(layout, mirrored) > 0.5
    np.testing.assert_allclose(procrustes_align(layout, mirrored), layout, atol=1e-9)


def test_pca_alignment_lowers_the_movement_between_epochs() -> None:
    epochs = _training_epochs()
    aligned = project_epochs(epochs, ProjectionParams(method="pca", aligned=True))
    independent = project_epochs(epochs, ProjectionParams(method="pca", aligned=False))
    assert _mean_movement(aligned) < 0.5 * _mean_movement(independent)


def test_tsne_alignment_lowers_the_movement_between_epochs() -> None:
    epochs = {e: x for e, x in _training_epochs(3).items()}
    aligned = project_epochs(epochs, ProjectionParams(method="tsne", aligned=True))
    independent = project_epochs(epochs, ProjectionParams(method="tsne", aligned=False))
    assert _mean_movement(aligned) < 0.5 * _mean_movement(independent)


@pytest.mark.slow
def test_umap_alignment_lowers_the_movement_between_epochs() -> None:
    epochs = _training_epochs(3)
    params = ProjectionParams(method="umap", n_neighbors=15)
    aligned = project_epochs(epochs, params)
    independent = project_epochs(
        epochs, ProjectionParams(method="umap", n_neighbors=15, aligned=False)
    )
    assert _mean_movement(aligned) < 0.5 * _mean_movement(independent)
    for layout in aligned.values():
        assert layout.shape == (300, 2)
        np.testing.assert_allclose(np.sqrt((layout**2).sum(axis=1).mean()), 1.0, rtol=1e-6)


def test_transform_places_the_fitted_points_where_the_fit_put_them() -> None:
    x, _ = _clusters()
    reference = standardize(np.random.default_rng(3).normal(size=(len(x), 2)))
    projector = Projector(method="pca", reference=reference).fit(x)
    np.testing.assert_allclose(projector.transform(x), projector.embedding_, atol=1e-9)
    one = projector.transform(x[:1])
    assert one.shape == (1, 2)


def test_tsne_cannot_place_new_points() -> None:
    x, _ = _clusters(n_per_class=6)
    projector = Projector(method="tsne", perplexity=5).fit(x)
    with pytest.raises(ConvscopeError, match="t-SNE cannot place new points"):
        projector.transform(x[:3])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "tsne", "perplexity": 500}, "t-SNE perplexity 500 needs more points"),
        ({"method": "umap", "n_neighbors": 500}, "UMAP n_neighbors 500 needs more points"),
    ],
)
def test_a_neighbourhood_larger_than_the_data_is_refused_not_clamped(options, message) -> None:
    x, _ = _clusters(n_per_class=6)
    with pytest.raises(ConvscopeError, match=message):
        Projector(**options).fit(x)


def test_parameters_name_the_cache_entry() -> None:
    umap = ProjectionParams(method="umap")
    assert umap.key() == ProjectionParams(method="umap", perplexity=5).key()  # irrelevant to UMAP
    assert umap.key() != ProjectionParams(method="umap", n_neighbors=15).key()
    assert umap.key().startswith("umap-")
    with pytest.raises(ConvscopeError, match="unknown embedding method"):
        ProjectionParams(method="isomap")


def test_bad_features_are_refused() -> None:
    x, _ = _clusters()
    x[3, 2] = np.nan
    with pytest.raises(ConvscopeError, match="NaN"):
        Projector(method="pca").fit(x)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"seed": -1}, "seed must be from 0"), ({"min_dist": -1}, "min_dist must be from 0 to 1")],
)
def test_bad_parameters_are_refused_up_front(options, message) -> None:
    with pytest.raises(ConvscopeError, match=message):
        ProjectionParams(**options)
