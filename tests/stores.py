"""Small real run stores the tests share (real data, real training)."""

from __future__ import annotations

from pathlib import Path

TINY_MODELS = ("sequential", "residual")


def train_tiny_study(root: Path, *, subset: int = 300, probe_per_class: int = 5) -> list[str]:
    """Study ``tiny`` in a store at ``root``: one 2-epoch run of each of :data:`TINY_MODELS`.

    Each trains on a ``subset``-image stratified subset of Fashion-MNIST with ``hidden``
    recorded on ``probe_per_class`` probe images per class, and is tested on the whole
    test split. Returns the run ids, in :data:`TINY_MODELS` order.
    """
    from convscope.store import open_store
    from convscope.train.loop import TrainConfig
    from convscope.train.run import RunSettings, train_run

    ids = []
    with open_store(root) as store:
        for model in TINY_MODELS:
            settings = RunSettings(
                model=model,
                data="fashion-mnist",
                config=TrainConfig(epochs=2, batch_size=100, seed=0),
                record=("hidden",),
                probe_per_class=probe_per_class,
                subset=subset,
                study="tiny",
                name=f"tiny/{model}",
            )
            ids.append(train_run(settings, store=store).run_id)
    return ids


def build_tiny_store(root: Path) -> Path:
    """The smallest such store (300 images, 50 probe images a run): a few seconds."""
    train_tiny_study(root)
    return root


class StopAfter:
    """A training callback that interrupts after ``epoch``, as Ctrl-C (or SIGTERM) would."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, metrics) -> None:
        if metrics.epoch == self.epoch:
            raise KeyboardInterrupt

    def on_train_end(self, trainer, result) -> None:
        pass


def copy_store(source: Path, target: Path) -> Path:
    """A consistent copy of a run store that other tests may have open.

    ``shutil.copytree`` of a live store races: SQLite creates and deletes the ``-wal`` and
    ``-shm`` files as connections open and close, so a file listed may be gone when it is
    copied. The database goes through SQLite's backup API first, then the files it can
    reference (complete once referenced, never changed).
    """
    import shutil
    import sqlite3

    target.mkdir(parents=True)
    src, dst = sqlite3.connect(source / "convscope.db"), sqlite3.connect(target / "convscope.db")
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    if (source / "runs").is_dir():
        shutil.copytree(source / "runs", target / "runs", ignore=shutil.ignore_patterns(".*.part"))
    return target
