"""Reading runs back: the settings that applied, and the number of updates a run made."""

from __future__ import annotations

from types import SimpleNamespace

from convscope.store.results import study_settings, updates_of


def _run(**config) -> SimpleNamespace:
    train = {
        "epochs": 10,
        "batch_size": 500,
        "lr": 0.001,
        "optimizer": "adam",
        "momentum": 0.9,
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
    assert adam["batch_size"] == 500 and adam["record"] == ["hidden"]
    sgd = study_settings(_run(train={"optimizer": "sgd", "lr_schedule": "cosine", "patience": 3}))
    assert (sgd["momentum"], sgd["lr_schedule"], sgd["patience"]) == (0.9, "cosine", 3)


def test_updates_from_the_stored_image_count_or_the_dataset_size() -> None:
    assert updates_of(_run(train_images=48_000), 10) == 960  # the reference: 96 batches of 500
    assert updates_of(_run(), 10) == 960  # older runs: 60,000 less the 0.2 validation split
    assert updates_of(_run(subset=6000), 2) == 20  # 4,800 images: 10 batches an epoch
    assert updates_of(_run(subset=1000, train={"batch_size": 300}), 1) == 3  # 800 / 300, rounded up
