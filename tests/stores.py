"""Small real run stores the server and browser tests share (real data, real training)."""

from __future__ import annotations

from pathlib import Path

TINY_MODELS = ("sequential", "residual")


def build_tiny_store(root: Path) -> Path:
    """Study ``tiny`` in a store at ``root``: one 2-epoch run of each of :data:`TINY_MODELS`.

    Each trains on a 300-image stratified subset of Fashion-MNIST with ``hidden``
    recorded on 50 probe images, and is tested on the whole test split (a few seconds).
    """
    from convscope.store import open_store
    from convscope.train.loop import TrainConfig
    from convscope.train.run import RunSettings, train_run

    with open_store(root) as store:
        for model in TINY_MODELS:
            settings = RunSettings(
                model=model,
                data="fashion-mnist",
                config=TrainConfig(epochs=2, batch_size=100, seed=0),
                record=("hidden",),
                probe_per_class=5,
                subset=300,
                study="tiny",
                name=f"tiny/{model}",
            )
            train_run(settings, store=store)
    return root
