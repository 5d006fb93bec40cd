"""The study: runs in one named study, the study folder, the CLI."""

from __future__ import annotations

import json
import re
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


def test_every_epoch_of_every_run_reaches_the_python_callback(tmp_path: Path) -> None:
    from convscope.train.study import study

    events = []
    study(
        ("lenet5", "lenet"),
        data="mnist",
        epochs=2,
        batch_size=100,
        subset=300,
        record=(),
        store=tmp_path / "runs",
        on_epoch=events.append,
    )
    assert [(e.label, e.epoch, e.done, e.total) for e in events] == [
        ("lenet5", 0, 0, 4),
        ("lenet5", 1, 1, 4),
        ("lenet5", 2, 2, 4),
        ("lenet", 0, 2, 4),
        ("lenet", 1, 3, 4),
        ("lenet", 2, 4, 4),
    ]
    assert len({e.run_id for e in events}) == 2 and all(e.run_id for e in events)
    assert events[0].line().startswith("lenet5 epoch 0 (before training):  val loss ")
    line = events[1].line()
    assert line.startswith("lenet5 epoch 1/2: loss ") and "val acc" in line and line.endswith(" s)")


def _study_command(store: Path, out: Path, *extra: str) -> list[str]:
    import sys

    return [
        sys.executable, "-m", "convscope", "study", "--models", "sequential,residual",
        "--store", str(store), "--out", str(out), "--probe-per-class", "5", *extra,
    ]  # fmt: skip


def _run_on_a_terminal(command: list[str]) -> tuple[int, str]:
    """Run ``command`` with stderr on a pseudo-terminal; its exit status and what it wrote."""
    import os
    import pty
    import subprocess

    master, slave = pty.openpty()
    env = os.environ | {"COLUMNS": "200", "TERM": "xterm"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.stdout.read()
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    return process.wait(timeout=120), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.mark.slow
def test_progress_lines_on_a_terminal_and_none_with_json(tmp_path: Path) -> None:
    args = ("--epochs", "2", "--subset", "300", "--batch-size", "100")
    status, text = _run_on_a_terminal(_study_command(tmp_path / "a", tmp_path / "a-out", *args))
    assert status == 0, text
    for model in ("sequential", "residual"):
        assert f"{model} epoch 0 (before training):" in text
        for epoch in (1, 2):
            assert f"{model} epoch {epoch}/2: loss " in text
    assert "4/4 epochs" in text and "left" in text  # the overall bar with the time left
    status, text = _run_on_a_terminal(
        _study_command(tmp_path / "b", tmp_path / "b-out", *args, "--json")
    )
    assert status == 0 and "epoch" not in text and "━" not in text


@pytest.mark.slow
def test_a_killed_study_resumes_from_its_runs(tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from convscope.train.run import RunSettings, train_run

    store_dir, out = tmp_path / "runs", tmp_path / "out"
    args = ("--epochs", "3", "--subset", "2000", "--batch-size", "100")
    process = subprocess.Popen(
        _study_command(store_dir, out, *args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill it once the second run committed epoch 1
            time.sleep(0.2)
            if (store_dir / "convscope.db").exists():
                with open_store(store_dir, create=False) as store:
                    runs = store.runs()
                if len(runs) == 2 and runs[1].epochs_completed >= 1:
                    break
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    with open_store(store_dir, create=False) as store:
        before = {r.model: r for r in store.runs()}
    assert before["sequential"].status == "finished"
    assert before["residual"].epochs_completed in (1, 2)
    resume = ["study", "--resume", "architectures", "--store", str(store_dir), "--out", str(out)]
    assert main([*resume, "--json"]) == 0
    with open_store(store_dir) as store:
        after = {r.model: r for r in store.runs()}
        resumed = store.metrics(after["residual"].id)
        settings = RunSettings.from_dict(
            {
                k: v
                for k, v in after["residual"].config.items()
                if k in RunSettings.__dataclass_fields__
            }
        )
        fresh = store.metrics(train_run(replace_name(settings), store=store).run_id)
    assert {m: r.id for m, r in after.items()} == {m: r.id for m, r in before.items()}
    assert all(r.status == "finished" and r.epochs_completed == 3 for r in after.values())
    assert after["sequential"].updated == before["sequential"].updated  # kept, not retrained
    for name in ("val_loss", "val_acc", "train_loss"):  # as if it had never been killed
        assert resumed[name].tolist() == pytest.approx(fresh[name].tolist(), nan_ok=True)
    assert (out / "index.html").is_file()
    # every run finished (e.g. killed while writing its folder): only the folder is written
    again = tmp_path / "again"
    rewrite = ["study", "--resume", "architectures", "--store", str(store_dir), "--out", str(again)]
    assert main([*rewrite, "--json"]) == 0
    assert (again / "index.html").is_file()
    with open_store(store_dir) as store:
        assert {r.id: r.updated for r in store.runs_of_study("architectures")} == {
            r.id: r.updated for r in after.values()
        }


def replace_name(settings):
    """The same run settings outside the study (so the study keeps its own runs)."""
    from dataclasses import replace

    return replace(settings, name="fresh", study=None)


def test_resume_of_an_unknown_study_is_one_line(tmp_path: Path, capsys) -> None:
    with open_store(tmp_path / "runs"):
        pass
    assert main(["study", "--resume", "architecture", "--store", str(tmp_path / "runs")]) == 2
    assert "no study 'architecture'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_model_that_cannot_learn_is_flagged_and_never_ranked_first(tmp_path: Path, capsys):
    """residual trained at a learning rate that diverges, beside sequential that learns."""
    from convscope.train.run import RunSettings, train_run

    with open_store(tmp_path / "runs") as store:
        for model, lr in (("residual", 50.0), ("sequential", 0.003)):
            settings = RunSettings(
                model=model,
                data="fashion-mnist",
                config=TrainConfig(epochs=3, batch_size=100, lr=lr),
                record=("hidden",),
                subset=3000,
                probe_per_class=30,
                name=f"mixed/{model}",
                study="mixed",
            )
            train_run(settings, store=store)
    store_arg = ["--store", str(tmp_path / "runs"), "--method", "pca"]
    assert main(["report", "mixed", "--json", *store_arg]) == 0
    document = json.loads(capsys.readouterr().out)
    ranking = {r["model"]: r for r in document["ranking"]}
    assert [r["model"] for r in document["ranking"]] == ["sequential", "residual"]
    assert ranking["sequential"]["learned"] and not ranking["residual"]["learned"]
    assert ranking["residual"]["test_acc"] < 0.2 < ranking["sequential"]["test_acc"]
    first_sentence = document["verdict"].split(". ")[0]
    assert first_sentence.startswith("Only sequential has learned")
    assert "residual has not learned yet: test accuracy" in document["verdict"]
    assert ranking["sequential"]["gain_over_epoch0"]["knn_hidden"] > 0
    page = tmp_path / "report.html"
    assert main(["report", "mixed", "--out", str(page), *store_arg]) == 0
    assert "not yet: test accuracy" in page.read_text(encoding="utf-8")
