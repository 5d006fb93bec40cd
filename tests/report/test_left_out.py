"""A study with an interrupted seed is judged on its finished runs, and says what it left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from convscope.embed.projection import ProjectionParams
from convscope.report.collect import collect_ranking
from convscope.store import open_store
from convscope.store.results import study_result, study_runs
from convscope.train.loop import TrainConfig
from convscope.train.run import RunSettings, train_run
from tests.stores import StopAfter, train_tiny_study

PCA = ProjectionParams(method="pca")


@pytest.mark.slow
def test_an_interrupted_seed_is_left_out_and_named(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    sequential, residual = train_tiny_study(root, subset=2000, probe_per_class=10)
    with open_store(root) as store:
        seed1 = RunSettings(  # seed 1 of sequential, stopped after epoch 0: only epoch 0 stored
            model="sequential",
            data="fashion-mnist",
            config=TrainConfig(epochs=2, batch_size=100, seed=1),
            record=("hidden",),
            probe_per_class=10,
            subset=2000,
            study="tiny",
            name="tiny/sequential/seed1",
        )
        with pytest.raises(KeyboardInterrupt):
            train_run(seed1, store=store, callbacks=[StopAfter(0)])
        stopped = store.runs_of_study("tiny")[-1]
        assert (stopped.status, stopped.epochs_completed) == ("interrupted", 0)
        line = (
            f"sequential seed 1 (run {stopped.id}, interrupted at epoch 0): "
            "`convscope study --resume tiny` finishes it"
        )
        assert study_runs(store, "tiny") == ([sequential, residual], [line])
        result = study_result(store, "tiny")
        assert [r.run_id for r in result.runs] == [sequential, residual]
        assert result.left_out == [line]

        ranked = collect_ranking(store, ["tiny"], params=PCA)
        alone = collect_ranking(store, [sequential, residual], params=PCA)
    scores = {r.model: r for r in ranked.ranking}
    assert scores["sequential"].epoch == 2 and scores["sequential"].seeds == 1
    assert scores["sequential"].learned, scores["sequential"].why_not
    # Exactly the ranking of the two finished runs named by id: the stopped seed counts for nothing.
    assert ranked.to_dict()["ranking"] == alone.to_dict()["ranking"]
    verdict = ranked.to_dict()["verdict"]
    assert f"Left out of this comparison: {line}." in verdict
    assert "sequential has not learned" not in verdict and "only epoch 0" not in verdict
    # Whether or not residual learned in 32 updates, the verdict says how little it can tell.
    assert "The comparison is under-powered: one seed per model" in verdict
    assert "With only 32 updates per model this is an early look" in verdict
