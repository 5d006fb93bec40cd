"""Plain records the run store returns: runs, epochs, artifacts and check reports."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Where a run stands; ``interrupted`` is a run whose process died without saying so."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


# Metrics listed first, in this order, wherever metrics are shown; others follow by name.
CANONICAL_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


@dataclass(frozen=True)
class RunRecord:
    """One run's metadata.

    ``epochs_completed`` is the highest committed epoch: 0 when only the state before
    training (epoch 0) is recorded, and -1 when no epoch is committed yet, so a resumed
    run continues at ``epochs_completed + 1``. Timestamps are ISO 8601 in UTC.
    """

    id: str
    name: str
    study: str | None
    model: str
    dataset: str
    config: dict[str, Any]
    status: str
    created: str
    updated: str
    finished: str | None
    convscope_version: str | None
    torch_version: str | None
    epochs_completed: int
    pid: int | None
    host: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass(frozen=True)
class EpochRecord:
    """One committed epoch: its number, how long it took, and when it was committed."""

    run_id: str
    epoch: int
    seconds: float | None
    committed: str


@dataclass(frozen=True)
class ArtifactRecord:
    """One file of a run; ``epoch`` is None for run-level files, ``path`` is store-relative."""

    id: int
    run_id: str
    epoch: int | None
    kind: str
    name: str
    path: str
    sha256: str
    bytes: int
    dtype: str | None
    shape: tuple[int, ...] | None
    created: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (shape as a list)."""
        data = asdict(self)
        data["shape"] = list(self.shape) if self.shape is not None else None
        return data

    def describe(self) -> str:
        """Short words for messages: run, epoch, kind and name."""
        where = "run level" if self.epoch is None else f"epoch {self.epoch}"
        return f"run {self.run_id}, {where}, {self.kind} {self.name!r}"


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` found; ``orphans`` lists unreferenced files, ``removed`` those deleted."""

    ok: bool
    problems: list[str]
    orphans: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Exactly ``{"ok": ..., "problems": [...]}``, the CLI's JSON contract."""
        return {"ok": self.ok, "problems": list(self.problems)}


def run_from_row(row: tuple[Any, ...]) -> RunRecord:
    """Build a RunRecord from a row selected with :data:`RUN_SELECT`."""
    (id_, name, study, model, dataset, config, status, created, updated, finished) = row[:10]
    convscope_version, torch_version, pid, host, last_epoch = row[10:]
    return RunRecord(
        id=id_,
        name=name,
        study=study,
        model=model,
        dataset=dataset,
        config=json.loads(config),
        status=status,
        created=created,
        updated=updated,
        finished=finished,
        convscope_version=convscope_version,
        torch_version=torch_version,
        epochs_completed=-1 if last_epoch is None else int(last_epoch),
        pid=pid,
        host=host,
    )


def artifact_from_row(row: tuple[Any, ...]) -> ArtifactRecord:
    """Build an ArtifactRecord from a row selected with :data:`ARTIFACT_SELECT`."""
    id_, run_id, epoch, kind, name, path, sha256, size, dtype, shape, created = row
    return ArtifactRecord(
        id=id_,
        run_id=run_id,
        epoch=epoch,
        kind=kind,
        name=name,
        path=path,
        sha256=sha256,
        bytes=size,
        dtype=dtype,
        shape=tuple(json.loads(shape)) if shape is not None else None,
        created=created,
    )


RUN_SELECT = (
    "SELECT id, name, study, model, dataset, config, status, created, updated, finished, "
    "convscope_version, torch_version, pid, host, "
    "(SELECT MAX(epoch) FROM epochs WHERE epochs.run_id = runs.id) FROM runs"
)
ARTIFACT_SELECT = (
    "SELECT id, run_id, epoch, kind, name, path, sha256, bytes, dtype, shape, created "
    "FROM artifacts"
)


def metric_order(names: set[str]) -> list[str]:
    """Metric names in display order: the canonical four first, then the rest by name."""
    first = [n for n in CANONICAL_METRICS if n in names]
    return first + sorted(names - set(first))


def json_number(value: float) -> float | None:
    """A float for JSON: NaN (a missing value) becomes None."""
    return None if math.isnan(value) else float(value)
