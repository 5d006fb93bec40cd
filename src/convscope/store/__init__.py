"""The run store: every training run's metadata, per-epoch metrics and files, in one directory.

::

    from convscope.store import open_store

    with open_store("convscope-runs") as store:
        run = store.create_run(name="lenet-mnist", model="lenet", dataset="mnist", config={})
        store.commit_epoch(run.id, 0, metrics={"val_acc": 0.1}, arrays={("snapshot", "hidden"): h})
        store.metrics(run.id)["val_acc"]

A SQLite database (``convscope.db``, WAL mode) holds runs, epochs, metrics and the list
of artifact files, which live under ``runs/<run_id>/``; see :mod:`convscope.store.files`
for the layout and :class:`RunStore` for the guarantees.
"""

from __future__ import annotations

from convscope.store.errors import StoreError
from convscope.store.records import ArtifactRecord, CheckReport, EpochRecord, RunRecord, RunStatus
from convscope.store.store import DEFAULT_STORE_DIR, RunStore, open_store

__all__ = [
    "DEFAULT_STORE_DIR",
    "ArtifactRecord",
    "CheckReport",
    "EpochRecord",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "StoreError",
    "open_store",
]
