"""Reading runs back: the settings that applied, and the number of updates a run made."""

from __future__ import annotations

from types import SimpleNamespace

from convscope.store.results import study_runs, study_settings, updates_of


def _run(**config) -> SimpleNamespace:
    train = {
        "epochs": 10,
        "batch_size": 500,
        "lr": 0.001,
        "optimizer": "adam",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "val_split": 0.2,
        "lr_schedule": "none",
        "patience": None,
        "seed": 0,
    }
    train |= config.pop("train", {})
    return SimpleNamespace(
        dataset="fashion-mnist",
        config={"config": train, "record": ["hidden"], "subset": None, "probe_per_class": 100,
                **config},
    )  # fmt: skip


def test_settings_show_only_what_applied_to_the_optimiser() -> None:
    adam = study_settings(_run())
    assert "momentum" not in adam and adam["optimizer"] == "adam"
    assert "lr_schedule" not in adam and "patience" not in adam and "subset" not in adam
    assert "weight_decay" not in adam  # off
    assert study_settings(_run(train={"weight_decay": 1e-4}))["weight_decay"] == 1e-4
    assert adam["batch_size"] == 500 and adam["record"] == ["hidden"]
    sgd = study_settings(_run(train={"optimizer": "sgd", "lr_schedule": "cosine", "patience": 3}))
    assert (sgd["momentum"], sgd["lr_schedule"], sgd["patience"]) == (0.9, "cosine", 3)


def test_updates_from_the_stored_image_count_or_the_dataset_size() -> None:
    assert updates_of(_run(train_images=48_000), 10) == 960  # the reference: 96 batches of 500
    assert updates_of(_run(), 10) == 960  # older runs: 60,000 less the 0.2 validation split
    assert updates_of(_run(subset=6000), 2) == 20  # 4,800 images: 10 batches an epoch
    assert updates_of(_run(subset=1000, train={"batch_size": 300}), 1) == 3  # 800 / 300, rounded up


def _record(run_id: str, model: str, seed: int, status: str = "finished", epochs: int = 10):
    return SimpleNamespace(
        id=run_id,
        model=model,
        status=status,
        epochs_completed=epochs,
        config={"config": {"seed": seed}},
    )


class _Store:
    def __init__(self, *records: SimpleNamespace) -> None:
        self.records = list(records)

    def runs_of_study(self, name: str) -> list[SimpleNamespace]:
        return self.records


def test_a_study_shows_the_latest_finished_run_of_each_model_and_seed() -> None:
    store = _Store(
        _record("seq0", "sequential", 0),
        _record("inc0", "inception", 0),
        _record("seq1", "sequential", 1, "interrupted", 0),  # the seed that never finished
        _record("inc0b", "inception", 0, "interrupted", 3),  # a later re-run of a finished seed
        _record("inc1", "inception", 1, "running", 4),
    )
    assert study_runs(store, "architectures") == (
        ["seq0", "inc0"],
        [
            "inception seed 0 (run inc0b, interrupted at epoch 3; its finished run inc0 is "
            "used): `convscope study --resume architectures` finishes it",
            "sequential seed 1 (run seq1, interrupted at epoch 0): "
            "`convscope study --resume architectures` finishes it",
            "inception seed 1 (run inc1, still running, at epoch 4): "
            "it counts once it has finished",
        ],
    )


def test_a_study_in_progress_shows_its_latest_runs() -> None:
    # No run of residual has finished: its latest runs are shown, nothing is left out.
    store = _Store(
        _record("seq0", "sequential", 0),
        _record("res0", "residual", 0, "interrupted", 2),
        _record("res0b", "residual", 0, "running", 1),
        _record("res1", "residual", 1, "running", 0),
    )
    assert study_runs(store, "s") == (["seq0", "res0b", "res1"], [])
