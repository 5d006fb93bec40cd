"""Maps of a real recorded run: every epoch mapped, cached in the store, read back without work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convscope.embed.projection import ProjectionParams
from convscope.embed.runs import EMBEDDING_KIND, SCORES_KIND, embed_run
from convscope.errors import LayerError
from convscope.render.embedding import (
    pick_epochs,
    plot_embedding_grid,
    plot_score_curves,
    write_animation,
)
from convscope.store import open_store


def test_every_epoch_is_mapped_and_scored(recorded_runs) -> None:
    root, (run_id, _) = recorded_runs
    with open_store(root) as store:
        params = ProjectionParams(method="tsne", perplexity=10)  # no other test maps this pair
        result = embed_run(store, run_id, "hidden", params)
        assert result.epochs == [0, 1, 2] and result.computed == [0, 1, 2]
        assert result.layouts[2].shape == (100, 2)
        assert result.class_names[0] == "T-shirt/top"
        # training separates the classes: the hidden space's k-NN accuracy rises from epoch 0
        assert result.scores[2].knn_hidden > result.scores[0].knn_hidden
        assert result.scores[2].linear_probe > 0.5
        data = result.to_dict()
        assert data["method"] == "tsne" and [e["epoch"] for e in data["epochs"]] == [0, 1, 2]
        assert store.check().ok


def test_a_cache_hit_does_no_recomputation(recorded_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    root, (_, run_id) = recorded_runs
    params = ProjectionParams(method="pca", aligned=False)  # no other test maps this pair
    with open_store(root) as store:
        first = embed_run(store, run_id, "hidden", params)
        assert first.computed == [0, 1, 2]
        name = f"hidden.{params.key()}"
        assert len(store.artifacts(run_id, kind=EMBEDDING_KIND, name=name)) == 3
        assert len(store.artifacts(run_id, kind=SCORES_KIND, name=name)) == 3

        def fail(*_args, **_kwargs):
            raise AssertionError("recomputed a cached epoch")

        monkeypatch.setattr("convscope.embed.runs.fit_layout", fail)
        monkeypatch.setattr("convscope.embed.runs.separation_scores", fail)
        second = embed_run(store, run_id, "hidden", params)
    assert second.computed == []
    for epoch in first.epochs:
        np.testing.assert_array_equal(first.layouts[epoch], second.layouts[epoch])
        assert first.scores[epoch] == second.scores[epoch]


def test_other_parameters_are_a_separate_cache_entry(recorded_runs) -> None:
    root, (run_id, _) = recorded_runs
    with open_store(root) as store:
        embed_run(store, run_id, "hidden", ProjectionParams(method="pca"))
        again = embed_run(store, run_id, "hidden", ProjectionParams(method="pca", aligned=False))
    assert again.computed == [0, 1, 2]


def test_unrecorded_layer_names_the_recorded_ones(recorded_runs) -> None:
    root, (run_id, _) = recorded_runs
    with open_store(root) as store, pytest.raises(LayerError, match="recorded: hidden"):
        embed_run(store, run_id, "hiden")


def test_pictures_of_two_runs_side_by_side(recorded_runs, tmp_path: Path) -> None:
    root, ids = recorded_runs
    with open_store(root) as store:
        results = [embed_run(store, i, "hidden", ProjectionParams(method="pca")) for i in ids]
    fig = plot_embedding_grid(results)
    axes = fig.axes
    assert len(axes) == 2 * 3
    assert axes[0].get_title() == "epoch 0" and axes[0].get_ylabel() == "sequential"
    assert axes[3].get_ylabel() == "residual"
    assert axes[0].get_xlim() == axes[5].get_xlim()  # one shared scale
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "Ankle boot" in legend_texts and len(legend_texts) == 10
    curves = plot_score_curves(results)
    assert len(curves.axes[0].get_lines()) == 2
    gif = write_animation(results, tmp_path / "maps.gif")
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 3


def test_pick_epochs_keeps_first_and_last() -> None:
    assert pick_epochs(range(11), 6) == [0, 2, 4, 6, 8, 10]
    assert pick_epochs([0, 1, 2]) == [0, 1, 2]
