"""The verdict ranks models by their scores and is honest about seed-to-seed spread."""

from __future__ import annotations

import numpy as np

from convscope.embed.projection import ProjectionParams
from convscope.embed.runs import RunEmbedding
from convscope.embed.scores import SeparationScores
from convscope.report.verdict import model_scores, verdict


def _run(model: str, knn: float, seed: int = 0) -> RunEmbedding:
    score = SeparationScores(
        knn_hidden=knn,
        knn_map=knn - 0.05,
        silhouette=knn / 4,
        trustworthiness=0.9,
        linear_probe=knn,
    )
    start = SeparationScores(0.5, 0.45, 0.01, 0.8, 0.5)
    return RunEmbedding(
        run_id=f"{model}{seed}",
        run_name=f"{model}/seed{seed}",
        model=model,
        layer="hidden",
        params=ProjectionParams(method="pca"),
        labels=np.zeros(3, dtype=int),
        class_names=("a",),
        layouts={0: np.zeros((3, 2)), 2: np.zeros((3, 2))},
        scores={0: start, 2: score},
    )


def test_best_model_first_with_its_numbers_cited() -> None:
    ranked = model_scores([_run("sequential", 0.80), _run("inception-residual", 0.90)])
    assert [r.model for r in ranked] == ["inception-residual", "sequential"]
    assert ranked[0].epoch == 2 and ranked[0].seeds == 1
    text = verdict(ranked)
    assert text.startswith("inception-residual separates the classes best at epoch 2")
    assert "0.900" in text and "sequential (mean rank 2.00; k-NN 0.800)" in text
    assert "(mean rank 1.00 of 2)" in text and "--seeds" in text


def test_rank_is_the_mean_over_the_scores_not_knn_alone() -> None:
    # b has the better hidden-space k-NN but loses on the other three scores.
    a, b = _run("a", 0.80), _run("b", 0.85)
    b.scores[2] = SeparationScores(0.85, 0.70, 0.10, 0.9, 0.70)
    ranked = model_scores([b, a])
    assert [r.model for r in ranked] == ["a", "b"]
    assert [r.mean_rank for r in ranked] == [1.25, 1.75]
    assert "b (mean rank 1.75; k-NN 0.850)" in verdict(ranked)


def test_seeds_give_intervals_and_a_clear_lead_is_called_clear() -> None:
    runs = [_run("residual", v, s) for s, v in enumerate((0.80, 0.81, 0.79))]
    runs += [_run("inception", v, s) for s, v in enumerate((0.90, 0.91, 0.89))]
    ranked = model_scores(runs)
    assert ranked[0].model == "inception" and ranked[0].seeds == 3
    assert abs(ranked[0].mean["knn_hidden"] - 0.90) < 1e-12
    assert ranked[0].half_width["knn_hidden"] > 0
    assert "larger than the two 95% intervals" in verdict(ranked)


def test_overlapping_intervals_are_called_not_clearly_different() -> None:
    runs = [_run("residual", v, s) for s, v in enumerate((0.80, 0.90, 0.70))]
    runs += [_run("inception", v, s) for s, v in enumerate((0.82, 0.92, 0.72))]
    assert "not clearly different" in verdict(model_scores(runs))


def test_no_scores_says_so() -> None:
    assert "recorded no hidden layer" in verdict([])
