"""``RunStore.export_run``: one run as a self-contained directory (its files + ``run.json``).

The export is built in a hidden temporary directory next to the target and renamed into
place at the end, so a failure leaves no partial export. Every copied file is checked
against its recorded sha256 on the way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from convscope.files import ensure_folder
from convscope.store import files
from convscope.store.errors import StoreError

if TYPE_CHECKING:
    from convscope.store.records import ArtifactRecord
    from convscope.store.store import RunStore

FORMAT = "convscope-run"
FORMAT_VERSION = 1


def _copy_verified(store: RunStore, artifact: ArtifactRecord, target: Path) -> None:
    """Copy an artifact's file to ``target``, failing if it differs from its checksum."""
    source = store.path_of(artifact)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with source.open("rb") as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
    except FileNotFoundError:
        raise StoreError(
            f"{source} is missing ({artifact.describe()}); `convscope runs check` lists damage"
        ) from None
    if digest.hexdigest() != artifact.sha256:
        raise StoreError(
            f"{source} does not match its recorded sha256 ({artifact.describe()}); "
            "`convscope runs check` lists damage"
        )


def _document(store: RunStore, run_id: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The content of ``run.json``."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run": store.run(run_id).to_dict(),
        "epochs": [
            {"epoch": e.epoch, "seconds": e.seconds, "committed": e.committed}
            for e in store.epochs(run_id)
        ],
        "metrics": store.metric_rows(run_id),
        "artifacts": entries,
    }


def _check_target(target: Path) -> None:
    """Refuse a target that exists and is not an empty directory."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} already exists and is not empty; export somewhere else")


def export_run(store: RunStore, ref: str, to_dir: Path) -> Path:
    """Write ``to_dir/<run_id>/`` with the run's files and ``run.json``; returns the directory."""
    record = store.run(ref)
    target = to_dir / record.id
    _check_target(target)
    ensure_folder(to_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{record.id}.", suffix=".part", dir=to_dir))
    try:
        entries = []
        base = files.run_dir(record.id)
        for artifact in store.artifacts(record.id):
            rel = PurePosixPath(artifact.path).relative_to(base)
            _copy_verified(store, artifact, tmp / rel)
            entries.append(artifact.to_dict() | {"path": str(rel)})
        text = json.dumps(_document(store, record.id, entries), indent=2, allow_nan=False)
        (tmp / "run.json").write_text(text + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        _check_target(target)
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
