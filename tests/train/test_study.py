"""The study: runs in one named study, the study folder, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convscope.cli.app import main
from convscope.errors import ConvscopeError
from convscope.store import open_store
from convscope.store.results import study_result
from convscope.train.loop import TrainConfig
from convscope.train.study import StudySettings, run_study


@pytest.mark.slow
def test_study_trains_each_model_and_writes_the_folder(tmp_path: Path) -> None:
    settings = StudySettings(
        name="tiny",
        models=("sequential", "residual"),
        config=TrainConfig(epochs=1, batch_size=100),
        subset=400,
        probe_per_class=2,
    )
    with open_store(tmp_path / "runs") as store:
        result = run_study(settings, store=store, out_dir=tmp_path / "out")
        assert [run.model for run in result.runs] == ["sequential", "residual"]
        assert {run.study for run in store.runs()} == {"tiny"}
        assert all(sorted(store.snapshots(r.run_id, "hidden")) == [0, 1] for r in result.runs)
        again = study_result(store, "tiny")
    assert [r.run_id for r in again.runs] == [r.run_id for r in result.runs]
    residual = result.runs[1]
    assert residual.params == 59_466
    assert residual.epochs.tolist() == [0, 1]
    assert residual.confusion.sum() == 10_000
    assert residual.class_names[0] == "T-shirt/top"
    for name in ("index.html", "curves.png", "results.csv", "confusion_residual.png"):
        assert (tmp_path / "out" / name).is_file()


def test_bad_study_settings_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(ConvscopeError):
        StudySettings(models=())
    with open_store(tmp_path / "runs") as store:
        with pytest.raises(ConvscopeError, match="hidden"):
            run_study(StudySettings(models=("sequential",), record=("hiden",)), store=store)
        assert store.runs() == []  # refused before any run was created


def test_study_cli_json(tmp_path: Path, capsys) -> None:
    status = main(
        [
            "study",
            "--models",
            "lenet5",
            "--data",
            "fashion-mnist",
            "--epochs",
            "1",
            "--subset",
            "300",
            "--record",
            "dense_1",
            "--probe-per-class",
            "2",
            "--store",
            str(tmp_path / "runs"),
            "--out",
            str(tmp_path / "study"),
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["results"][0]["model"] == "lenet5"
    assert (tmp_path / "study" / "index.html").is_file()


def test_seeds_train_each_model_once_per_seed(tmp_path: Path) -> None:
    settings = StudySettings(
        name="seeded",
        models=("lenet5",),
        config=TrainConfig(epochs=1, batch_size=100, seed=4),
        subset=300,
        record=("dense_1",),
        probe_per_class=2,
        seeds=2,
    )
    with open_store(tmp_path / "runs") as store:
        result = run_study(settings, store=store)
        runs = [store.run(r.run_id) for r in result.runs]
        again = study_result(store, "seeded")
    assert [r.config["config"]["seed"] for r in runs] == [4, 5]
    assert [r.name for r in runs] == ["seeded/lenet5/seed4", "seeded/lenet5/seed5"]
    assert len(again.runs) == 2  # the latest run of each model *and seed*
    assert result.runs[0].val_loss[-1] != result.runs[1].val_loss[-1]
    with pytest.raises(ConvscopeError, match="--seeds"):
        StudySettings(seeds=0)


def test_reading_a_study_loads_no_model(recorded_runs, monkeypatch) -> None:
    import convscope.models.loading as loading
    from convscope.store.results import run_result

    def refuse(*_args, **_kwargs):
        raise AssertionError("reading a run must not build its model")

    monkeypatch.setattr(loading, "load_model", refuse)
    root, ids = recorded_runs
    with open_store(root, create=False) as store:
        sequential, residual = (run_result(store, run_id) for run_id in ids)
    assert (sequential.params, residual.params) == (59_082, 59_466)  # stored when trained
