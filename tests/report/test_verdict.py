"""The verdict ranks models by what their hidden layer gained, and says what it cannot tell."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from convscope.embed.projection import ProjectionParams
from convscope.embed.runs import RunEmbedding
from convscope.embed.scores import SeparationScores, separation_scores
from convscope.report.verdict import (
    model_scores,
    ranking_document,
    settling_updates,
    verdict,
)
from convscope.store.results import RunResult
from tests.render import make_run

START = SeparationScores(0.5, 0.45, 0.01, 0.8, 0.5)


def _run(model: str, knn: float, seed: int = 0, start: SeparationScores = START) -> RunEmbedding:
    score = SeparationScores(
        knn_hidden=knn,
        knn_map=knn - 0.05,
        silhouette=knn / 4,
        trustworthiness=0.9,
        linear_probe=knn,
    )
    return _embedding(model, seed, {0: start, 2: score})


def _embedding(model: str, seed: int, scores: dict[int, SeparationScores]) -> RunEmbedding:
    return RunEmbedding(
        run_id=f"{model}{seed}",
        run_name=f"{model}/seed{seed}",
        model=model,
        layer="hidden",
        params=ProjectionParams(method="pca"),
        labels=np.zeros(3, dtype=int),
        class_names=("a",),
        layouts={epoch: np.zeros((3, 2)) for epoch in scores},
        scores=scores,
    )


def _facts(model: str, test_acc: float | None, seed: int = 0, **fields) -> RunResult:
    """A run's facts (three classes: chance is 1/3) matched to ``_run(model, ..., seed)``."""
    run = make_run(model, test_acc=test_acc)
    return replace(run, run_id=f"{model}{seed}", updates=fields.pop("updates", 960), **fields)


def test_best_model_first_with_its_gain_baseline_and_test_accuracy() -> None:
    ranked = model_scores(
        [_run("sequential", 0.80), _run("inception-residual", 0.90)],
        [_facts("sequential", 0.85), _facts("inception-residual", 0.88)],
    )
    assert [r.model for r in ranked] == ["inception-residual", "sequential"]
    best = ranked[0]
    assert best.epoch == 2 and best.seeds == 1 and best.learned
    assert best.baseline["knn_hidden"] == 0.5
    assert best.gain["knn_hidden"] == pytest.approx(0.4)
    text = verdict(ranked)
    first = text.split(". ")[0]
    assert first.startswith("inception-residual separates the classes best after 2 epochs")
    assert "+0.400 (0.500 → 0.900) in k-NN accuracy" in first
    assert "test accuracy 0.880" in first
    assert "sequential (test accuracy 0.850; k-NN +0.300 (0.500 → 0.800)" in text
    assert "under-powered" in text and "--seeds 3" in text


def test_rank_is_by_the_gain_over_epoch_0_not_the_final_score() -> None:
    # "high" ends with the better scores but started higher: "low" gained more.
    high = _run("high", 0.85, start=SeparationScores(0.80, 0.75, 0.15, 0.8, 0.80))
    low = _run("low", 0.80, start=SeparationScores(0.50, 0.45, 0.01, 0.8, 0.50))
    ranked = model_scores([high, low])
    assert [r.model for r in ranked] == ["low", "high"]
    assert [r.mean_rank for r in ranked] == [1.0, 2.0]


def test_a_model_near_chance_is_never_ranked_first_whatever_its_scores() -> None:
    runs = [_run("inception-residual", 0.95), _run("sequential", 0.70)]
    facts = [_facts("inception-residual", 0.36), _facts("sequential", 0.80)]
    ranked = model_scores(runs, facts)
    assert [r.model for r in ranked] == ["sequential", "inception-residual"]
    assert not ranked[1].learned and "near chance" in ranked[1].why_not
    text = verdict(ranked)
    assert text.startswith("Only sequential has learned")
    assert "inception-residual has not learned yet: test accuracy 0.360 is near chance" in text
    document = ranking_document(ranked)
    assert [(r["model"], r["learned"]) for r in document["ranking"]] == [
        ("sequential", True),
        ("inception-residual", False),
    ]


def test_no_model_learned_says_so_first() -> None:
    flat = _embedding("a", 0, {0: START, 2: START})  # ends where it started: no gain
    ranked = model_scores([flat, _run("b", 0.9)], [_facts("a", 0.8), _facts("b", 0.34)])
    assert not any(r.learned for r in ranked)
    assert verdict(ranked).startswith("No model has learned yet after 2 epochs")


def test_unsettled_batch_norm_is_named_with_the_updates_that_settle_it() -> None:
    assert settling_updates(0.01) == 459  # 0.99**459 < 1% <= 0.99**458
    runs = [_run("residual", 0.9), _run("sequential", 0.8)]
    facts = [
        _facts(
            "residual",
            0.6,
            train_acc=np.array([np.nan, 0.7, 0.9]),
            val_acc=np.array([0.3, 0.5, 0.55]),
            updates=40,
            batch_norm_momentum=0.01,
        ),
        _facts("sequential", 0.8, updates=40),
    ]
    text = verdict(model_scores(runs, facts))
    assert (
        "residual (validation 0.550, training 0.900) validates far below training accuracy" in text
    )
    assert "after 40 updates they still carry 67% of their initial values" in text
    assert "about 459 updates" in text
    assert "With only 40 updates per model this is an early look" in text


def test_seeds_give_intervals_and_a_clear_lead_is_called_clear() -> None:
    runs = [_run("residual", v, s) for s, v in enumerate((0.80, 0.81, 0.79))]
    runs += [_run("inception", v, s) for s, v in enumerate((0.90, 0.91, 0.89))]
    ranked = model_scores(runs)
    assert ranked[0].model == "inception" and ranked[0].seeds == 3
    assert abs(ranked[0].mean["knn_hidden"] - 0.90) < 1e-12
    assert ranked[0].half_width["knn_hidden"] > 0 and ranked[0].gain_half_width["knn_hidden"] > 0
    assert "± " in ranked[0].gain_text("knn_hidden")
    assert "larger than the two 95% intervals" in verdict(ranked)


def test_overlapping_intervals_are_called_not_clearly_different() -> None:
    runs = [_run("residual", v, s) for s, v in enumerate((0.80, 0.90, 0.70))]
    runs += [_run("inception", v, s) for s, v in enumerate((0.82, 0.92, 0.72))]
    assert "not clearly different" in verdict(model_scores(runs))


def test_no_scores_says_so() -> None:
    assert "recorded no hidden layer" in verdict([])


def test_ranking_entries_have_the_contract_keys() -> None:
    document = ranking_document(model_scores([_run("a", 0.8)], [_facts("a", 0.8)]))
    assert set(document) == {"verdict", "ranking"}
    assert set(document["ranking"][0]) == {
        "model",
        "test_acc",
        "learned",
        "epoch",
        "scores",
        "gain_over_epoch0",
        "mean_rank",
    }
    assert document["ranking"][0]["gain_over_epoch0"]["knn_hidden"] == pytest.approx(0.3)


def _layout(hidden: np.ndarray) -> np.ndarray:
    centred = hidden - hidden.mean(axis=0)
    return centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T


def test_on_a_separable_set_the_gain_tells_a_random_projection_from_learning() -> None:
    """A random projection of separable data scores high but gains nothing; learning gains."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 60)
    centres = rng.normal(0, 1, (4, 50)) * 1.2
    pixels = centres[labels] + rng.normal(0, 1, (len(labels), 50))

    def project(dims: int, seed: int) -> np.ndarray:
        weights = np.random.default_rng(seed).normal(0, 1 / np.sqrt(50), (50, dims))
        return np.maximum(pixels @ weights, 0)

    def scores(hidden: np.ndarray) -> SeparationScores:
        return separation_scores(hidden, _layout(hidden), labels)

    untrained = scores(project(32, 1))  # an untrained layer: a random projection, already good
    weak_start = scores(project(2, 2))  # another model's untrained layer: a poor projection
    learned = scores(np.eye(4)[labels] * 1.5 + rng.normal(0, 1, (len(labels), 4)))
    runs = [
        _embedding("projection", 0, {0: untrained, 2: scores(project(32, 1))}),
        _embedding("learner", 0, {0: weak_start, 2: learned}),
    ]
    assert untrained.knn_hidden > learned.knn_hidden  # by the final scores alone, projection wins
    ranked = model_scores(runs)
    assert [r.model for r in ranked] == ["learner", "projection"]
    assert ranked[0].learned and ranked[0].gain["knn_hidden"] > 0.1
    assert not ranked[1].learned and ranked[1].gain["knn_hidden"] == 0
    assert "no better than at epoch 0" in ranked[1].why_not


def test_a_seed_that_stopped_at_epoch_0_does_not_decide_the_model() -> None:
    # sequential seed 1 was interrupted with only epoch 0 recorded; before, the shortest
    # run decided and sequential "had not learned yet: only epoch 0 was recorded".
    stopped = _embedding("sequential", 1, {0: START})
    runs = [_run("sequential", 0.85), stopped, _run("residual", 0.80)]
    facts = [
        _facts("sequential", 0.89),
        _facts("sequential", None, seed=1, status="interrupted", updates=0),
        _facts("residual", 0.88),
    ]
    ranked = model_scores(runs, facts)
    assert [r.model for r in ranked] == ["sequential", "residual"]
    best = ranked[0]
    assert (best.learned, best.epoch, best.seeds, best.updates) == (True, 2, 1, 960)
    assert best.gain["knn_hidden"] == pytest.approx(0.35) and best.test_acc == 0.89
    assert best.left_out == (
        "sequential/seed1 (run sequential1, recorded up to epoch 0): not scored; "
        "sequential is scored at epoch 2 on its 1 other run",
    )
    text = verdict(ranked)
    assert text.startswith("sequential separates the classes best after 2 epochs (960 updates)")
    assert f"Left out of this comparison: {best.left_out[0]}." in text
    assert "has not learned" not in text


def test_seeds_that_stopped_early_are_scored_at_the_finished_runs_common_epoch() -> None:
    # Two finished seeds (one stopped early, at epoch 2) and one interrupted at epoch 1:
    # the finished runs decide, at the last epoch both reached.
    later = SeparationScores(0.95, 0.9, 0.3, 0.9, 0.95)
    runs = [
        _embedding("a", 0, {0: START, 2: later, 3: later}),
        _embedding("a", 1, {0: START, 1: later, 2: later}),
        _embedding("a", 2, {0: START, 1: START}),
    ]
    facts = [_facts("a", 0.9), _facts("a", 0.9, seed=1), _facts("a", 0.4, 2, status="interrupted")]
    (scores,) = model_scores(runs, facts)
    assert (scores.epoch, scores.seeds, scores.learned) == (2, 2, True)
    assert scores.gain["knn_hidden"] == pytest.approx(0.45)
    assert scores.test_acc == pytest.approx(0.9) and scores.test_acc_half_width == 0
    assert scores.left_out == (
        "a/seed2 (run a2, recorded up to epoch 1): not scored; a is scored at epoch 2 on its "
        "2 other runs",
    )


def test_the_study_runs_left_out_are_named_once_in_the_verdict() -> None:
    line = (
        "sequential seed 1 (run 48a8ce30, interrupted at epoch 0): "
        "`convscope study --resume architectures` finishes it"
    )
    facts = [
        _facts("sequential", 0.89, left_out={"48a8ce30": line}),
        _facts("residual", 0.88),
    ]
    ranked = model_scores([_run("sequential", 0.85), _run("residual", 0.80)], facts)
    assert ranked[0].left_out == (line,) and ranked[1].left_out == ()
    text = verdict(ranked)
    assert text.count("48a8ce30") == 1
    assert f"Left out of this comparison: {line}. The comparison is under-powered" in text
    assert set(ranking_document(ranked)) == {"verdict", "ranking"}


def test_one_model_that_learned_on_one_seed_is_called_under_powered() -> None:
    runs = [_run("sequential", 0.60), _run("residual", 0.52)]
    # Three classes: chance is 1/3, and 0.35 is near it.
    facts = [_facts("sequential", 0.55, updates=32), _facts("residual", 0.35, updates=32)]
    ranked = model_scores(runs, facts)
    assert [(r.model, r.learned) for r in ranked] == [("sequential", True), ("residual", False)]
    text = verdict(ranked)
    assert text.startswith("Only sequential has learned: after 2 epochs (32 updates)")
    assert "with test accuracy 0.550." in text
    assert (
        "The comparison is under-powered: one seed per model, so differences of a few points "
        "may be noise; run the study with --seeds 3 for intervals." in text
    )
    assert "With only 32 updates per model this is an early look, not a final ranking." in text
    # A single model mapped is no comparison: no such caveat.
    alone = verdict(model_scores([_run("sequential", 0.60)], [_facts("sequential", 0.8)]))
    assert alone.startswith("Only sequential was mapped") and "under-powered" not in alone
