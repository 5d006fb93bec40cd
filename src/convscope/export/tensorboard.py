"""A recorded run as TensorBoard event files: metrics, kernel grids and projector embeddings.

:func:`export_tensorboard` writes ``DIR/<run id>/`` with ``torch.utils.tensorboard``, so
``tensorboard --logdir DIR`` shows several exported runs side by side: the per-epoch
metrics as scalars (step = epoch, 0 = before training), each conv layer's kernels per
epoch as an image (the per-kernel grid of :mod:`convscope.probe.kernels`), and each
recorded layer's snapshots per epoch in the embedding projector, labelled with class
names and, where the run's dataset is at hand, the probe images as sprites. The folder
is built under a hidden name next to the target and renamed at the end, so a failed
export leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ConvscopeError, LayerError
from convscope.naming import close_matches

if TYPE_CHECKING:
    from convscope.probe.kernels import KernelGrid
    from convscope.store import RunRecord, RunStore

INSTALL_HINT = "pip install 'convscope[tensorboard]'"

KERNEL_NORM = "per-kernel"
"""Kernel images scale each kernel by its own range, as the reference tutorials do."""

MIN_TILE_PIXELS = 32
"""Kernels are enlarged (nearest neighbour) to at least this many pixels a side:
TensorBoard shows images at their own size, and a 2x2 kernel would be two pixels."""

GAP_PIXELS = 2
GAP_RGB = (70, 110, 170)
"""Gaps between kernel tiles are blue, a colour no gray kernel pixel can have."""

_SPLIT_GROUPS = {"loss": "loss", "acc": "accuracy"}


@dataclass(frozen=True)
class TensorBoardExport:
    """What :func:`export_tensorboard` wrote.

    ``scalars`` counts scalar values (one per metric and epoch), ``images`` kernel
    images (one per conv layer and epoch), ``embeddings`` projector tensors (one per
    recorded layer and epoch).
    """

    run: str
    dir: Path
    scalars: int
    images: int
    embeddings: int
    scalar_tags: list[str] = field(default_factory=list)
    image_tags: list[str] = field(default_factory=list)
    embedding_layers: list[str] = field(default_factory=list)
    sprites: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``export --json`` document."""
        return {
            "run": self.run,
            "dir": str(self.dir),
            "scalars": self.scalars,
            "images": self.images,
            "embeddings": self.embeddings,
        }


def scalar_tag(metric: str) -> str:
    """The TensorBoard tag of a stored metric: ``val_loss`` -> ``loss/val``, ``lr`` -> ``lr``.

    Losses and accuracies of every split share a chart (``loss/train``, ``loss/val``,
    ``loss/test``); other metrics keep their name (``seconds`` -> ``time/seconds``).
    """
    split, _, kind = metric.rpartition("_")
    if split and kind in _SPLIT_GROUPS:
        return f"{_SPLIT_GROUPS[kind]}/{split}"
    if metric == "seconds":
        return "time/seconds"
    return metric


def kernel_image(grid: KernelGrid, *, min_tile: int = MIN_TILE_PIXELS, gap: int = GAP_PIXELS):
    """A kernel grid as one ``uint8 H x W x 3`` image: tiles enlarged, blue gaps between.

    Each kernel of ``h x w`` becomes ``s*h x s*w`` pixels, ``s = ceil(min_tile / max(h, w))``;
    gray tiles repeat their value in R, G and B. Undrawn (non-finite) kernels are gaps.
    """
    h, w = grid.tiles.shape[1:3]
    scale = max(1, math.ceil(min_tile / max(h, w)))
    tiles = np.repeat(np.repeat(grid.tiles, scale, axis=1), scale, axis=2)
    mosaic = replace(grid, tiles=tiles).mosaic(gap=gap)
    if grid.colour:
        rgb, drawn = mosaic[..., :3], mosaic[..., 3] > 0
    else:
        drawn = np.isfinite(mosaic)
        rgb = np.repeat(np.nan_to_num(mosaic)[..., None], 3, axis=2)
    out = np.empty(rgb.shape, dtype=np.uint8)
    out[...] = np.asarray(GAP_RGB, dtype=np.uint8)
    out[drawn] = np.clip(np.round(rgb[drawn] * 255.0), 0, 255).astype(np.uint8)
    return out


def export_tensorboard(
    store: RunStore | str | os.PathLike[str],
    run: str,
    out_dir: str | os.PathLike[str],
    *,
    layers: Sequence[str] | None = None,
    force: bool = False,
    sprites: bool = True,
) -> TensorBoardExport:
    """Write run ``run`` of ``store`` as TensorBoard event files into ``out_dir/<run id>/``.

    ``layers`` restricts the kernel images and embeddings to those layers (default: every
    recorded one). An existing non-empty ``out_dir/<run id>`` is an error unless ``force``,
    which replaces it. ``sprites`` adds the probe images to the projector when the run's
    dataset can be loaded.
    """
    from convscope.store import RunStore, open_store

    if not isinstance(store, RunStore):
        with open_store(store, create=False) as opened:
            return export_tensorboard(
                opened, run, out_dir, layers=layers, force=force, sprites=sprites
            )
    writer_class = _summary_writer()
    record = store.run(run)
    kernel_layers, snapshot_layers = _recorded_layers(store, record.id)
    if layers is not None:
        kernel_layers, snapshot_layers = _chosen(record.id, layers, kernel_layers, snapshot_layers)
    target = Path(out_dir).expanduser() / record.id
    _check_target(target, force)
    created = [d for d in (target.parent, *target.parent.parents) if not d.exists()]
    tmp = _make_temp(target)
    try:
        writer = writer_class(log_dir=str(tmp))
        try:
            walltimes = _walltimes(store, record.id)
            _write_text(writer, record)
            scalars, scalar_tags = _write_scalars(writer, store, record.id, walltimes)
            scalars += _write_batch_losses(writer, store, record.id)
            images = _write_kernels(writer, store, record.id, kernel_layers, walltimes)
            embeddings, with_sprites = _write_embeddings(
                writer, store, record, snapshot_layers, sprites
            )
        finally:
            writer.close()
        _publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # innermost first: leave no empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return TensorBoardExport(
        run=record.id,
        dir=target,
        scalars=scalars,
        images=images,
        embeddings=embeddings,
        scalar_tags=scalar_tags,
        image_tags=[f"kernels/{name}" for name in kernel_layers],
        embedding_layers=list(snapshot_layers),
        sprites=with_sprites,
    )


# --- set-up -----------------------------------------------------------------------------


def _summary_writer() -> Any:
    """torch's SummaryWriter, or a one-line error saying how to install TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ConvscopeError(
            f"exporting to TensorBoard needs the tensorboard package: {INSTALL_HINT}"
        ) from exc
    return SummaryWriter


def _recorded_layers(store: RunStore, run_id: str) -> tuple[list[str], list[str]]:
    """The run's conv layers with kernels and its layers with snapshots, in recording order."""
    first: dict[tuple[str, str], int] = {}
    for artifact in store.artifacts(run_id):
        if artifact.epoch is not None and artifact.kind in ("kernels", "snapshot"):
            key = (artifact.kind, artifact.name)
            first[key] = min(first.get(key, artifact.id), artifact.id)
    ordered = sorted(first, key=first.__getitem__)
    return [n for k, n in ordered if k == "kernels"], [n for k, n in ordered if k == "snapshot"]


def _chosen(
    run_id: str, wanted: Sequence[str], kernels: list[str], snapshots: list[str]
) -> tuple[list[str], list[str]]:
    """Keep the layers asked for; a name the run did not record is an error listing them."""
    recorded = list(dict.fromkeys([*kernels, *snapshots]))
    for name in wanted:
        if name not in recorded:
            listing = ", ".join(recorded) if recorded else "none"
            raise LayerError(
                f"run {run_id} recorded no layer {name!r}{close_matches(name, recorded)} "
                f"(recorded: {listing})"
            )
    return [n for n in kernels if n in wanted], [n for n in snapshots if n in wanted]


def _check_target(target: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise ConvscopeError(f"{target} exists and is not a folder; export somewhere else")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConvscopeError(
            f"{target} already holds an export of this run; pass --force to replace it"
        )


def _make_temp(target: Path) -> Path:
    """A hidden folder next to ``target`` (same file system, so renaming is atomic)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    except OSError as exc:
        raise ConvscopeError(
            f"cannot write into {target.parent}: {exc.strerror or exc}; choose another folder"
        ) from exc


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished export into place, replacing an earlier one (``--force``)."""
    os.chmod(tmp, 0o755)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.rename(target, old / target.name)
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old / target.name, target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _walltimes(store: RunStore, run_id: str) -> dict[int, float]:
    """Epoch -> when it was committed (seconds since 1970), so TensorBoard's time axis is real."""
    times = {}
    for epoch in store.epochs(run_id):
        try:
            times[epoch.epoch] = datetime.fromisoformat(epoch.committed).timestamp()
        except (TypeError, ValueError):
            continue
    return times


# --- writing ----------------------------------------------------------------------------


def _write_text(writer: Any, record: RunRecord) -> None:
    """The run's identity and configuration, shown in TensorBoard's text tab."""
    lines = [
        f"**{record.name}** (run `{record.id}`): model `{record.model}` on `{record.dataset}`",
        f"status {record.status}, {record.epochs_completed} epochs, created {record.created}",
    ]
    if record.study:
        lines.append(f"study `{record.study}`")
    config = json.dumps(record.config, indent=2, sort_keys=True, default=str)
    text = "  \n".join(lines) + "\n\n" + "\n".join(f"    {line}" for line in config.splitlines())
    writer.add_text("run", text, global_step=0)


def _write_scalars(
    writer: Any, store: RunStore, run_id: str, walltimes: dict[int, float]
) -> tuple[int, list[str]]:
    """Every finite metric value at its epoch; returns the count and the tags used."""
    metrics = store.metrics(run_id)
    count, tags = 0, []
    for name, values in metrics.items():
        if name == "epoch":
            continue
        tag = scalar_tag(name)
        for epoch, value in zip(metrics["epoch"], values, strict=True):
            if np.isfinite(value):
                writer.add_scalar(
                    tag, float(value), global_step=int(epoch), walltime=walltimes.get(int(epoch))
                )
                count += 1
                if tag not in tags:
                    tags.append(tag)
    return count, tags


def _write_batch_losses(writer: Any, store: RunStore, run_id: str) -> int:
    """Per-batch training losses (runs trained with batch losses recorded), step = batch."""
    found = sorted(
        (a for a in store.artifacts(run_id, kind="batch_loss") if a.epoch is not None),
        key=lambda a: a.epoch,
    )
    step = count = 0
    for artifact in found:
        for value in store.load_array(artifact).ravel():
            step += 1
            if np.isfinite(value):
                writer.add_scalar("batch/loss_train", float(value), global_step=step)
                count += 1
    return count


def _write_kernels(
    writer: Any,
    store: RunStore,
    run_id: str,
    layers: Sequence[str],
    walltimes: dict[int, float],
) -> int:
    """One image per conv layer and epoch: its kernels, each scaled to its own range."""
    from convscope.probe.kernels import kernels_over_epochs

    count = 0
    for layer in layers:
        recorded = kernels_over_epochs(store, run_id, layer)
        for epoch, grid in zip(recorded.epochs, recorded.frames(KERNEL_NORM), strict=True):
            writer.add_image(
                f"kernels/{layer}",
                kernel_image(grid),
                global_step=epoch,
                walltime=walltimes.get(epoch),
                dataformats="HWC",
            )
            count += 1
    return count


def _write_embeddings(
    writer: Any,
    store: RunStore,
    record: RunRecord,
    layers: Sequence[str],
    sprites: bool,
) -> tuple[int, bool]:
    """Each layer's snapshot of each epoch for the projector, labelled with class names."""
    if not layers:
        return 0, False
    import torch

    from convscope.data.classes import dataset_class_names
    from convscope.train.run import probe_images

    labels = store.run_array(record.id, "probe", "labels").astype(np.int64)
    indices = _probe_indices(store, record.id, len(labels))
    names = dataset_class_names(record.dataset)
    metadata = [
        [_class_name(label, names), int(label), int(index)]
        for label, index in zip(labels, indices, strict=True)
    ]
    images = probe_images(store, record) if sprites else None
    label_img = None if images is None else torch.from_numpy(_sprite_batch(images))
    count = 0
    for layer in layers:
        for epoch, snapshot in sorted(store.snapshots(record.id, layer).items()):
            matrix = np.asarray(snapshot, dtype=np.float32).reshape(len(snapshot), -1)
            if len(matrix) != len(labels):
                raise ConvscopeError(
                    f"run {record.id}: the {layer} snapshot of epoch {epoch} has {len(matrix)} "
                    f"rows but the probe set has {len(labels)} images; the run is damaged"
                )
            writer.add_embedding(
                matrix,
                metadata=metadata,
                metadata_header=["class", "label", "index"],
                label_img=label_img,
                global_step=epoch,
                tag=layer,
            )
            count += 1
    return count, label_img is not None


def _class_name(label: int, names: Sequence[str] | None) -> str:
    return names[label] if names is not None and 0 <= label < len(names) else str(label)


def _probe_indices(store: RunStore, run_id: str, n: int) -> np.ndarray:
    """The probe images' positions in the run's training pixels (-1 where not recorded)."""
    from convscope.store import StoreError

    try:
        return store.run_array(run_id, "probe", "indices").astype(np.int64)
    except StoreError:
        return np.full(n, -1, dtype=np.int64)


def _sprite_batch(images: np.ndarray) -> np.ndarray:
    """uint8 ``N x H x W[x C]`` -> float ``N x C x H x W``, what ``add_embedding`` takes.

    Values are ``(p + 0.5) / 255``: TensorBoard multiplies by 255 and truncates to uint8,
    which gives back exactly ``p`` (255.5 is clipped to 255).
    """
    x = (images.astype(np.float32) + 0.5) / 255.0
    return x[:, None] if x.ndim == 3 else np.ascontiguousarray(x.transpose(0, 3, 1, 2))
