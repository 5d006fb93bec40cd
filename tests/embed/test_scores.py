"""Separation scores order a separable and a non-separable set correctly."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.embed.projection import Projector
from convscope.embed.scores import SCORE_NAMES, mean_and_interval, separation_scores


def _data(separable: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(5), 40)
    if separable:
        centres = rng.normal(size=(5, 12)) * 6
        return centres[labels] + rng.normal(size=(200, 12)), labels
    return rng.normal(size=(200, 12)), labels


def _scores(separable: bool):
    x, y = _data(separable)
    layout = Projector(method="pca").fit_transform(x)
    return separation_scores(x, layout, y)


def test_separable_set_scores_higher_on_every_class_score() -> None:
    good, bad = _scores(True), _scores(False)
    for name in ("knn_hidden", "knn_map", "silhouette", "linear_probe"):
        assert getattr(good, name) > getattr(bad, name) + 0.3, name
    assert good.knn_hidden > 0.95 and good.linear_probe > 0.95
    assert bad.knn_hidden < 0.4  # chance is 0.2
    assert set(good.to_dict()) == set(SCORE_NAMES)


def test_trustworthiness_prefers_a_map_that_keeps_neighbourhoods() -> None:
    x, y = _data(True)
    kept = Projector(method="pca").fit_transform(x)
    shuffled = kept[np.random.default_rng(1).permutation(len(kept))]
    assert (
        separation_scores(x, kept, y).trustworthiness
        > separation_scores(x, shuffled, y).trustworthiness + 0.2
    )


def test_mean_and_interval_matches_the_t_distribution() -> None:
    mean, half = mean_and_interval([0.8, 0.82, 0.84])
    assert mean == pytest.approx(0.82)
    # t(0.975, 2) = 4.3027; sd = 0.02; sem = 0.02 / sqrt(3)
    assert half == pytest.approx(4.302653 * 0.02 / np.sqrt(3), rel=1e-5)
    assert mean_and_interval([0.7]) == (0.7, 0.0)
