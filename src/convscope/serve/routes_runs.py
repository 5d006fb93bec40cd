"""Routes over the run store: runs, metrics, batch losses, maps, probe predictions, studies.

Thin over the library: each answer is what the CLI prints for the same question
(``runs list/show --json``, ``report --json``, ``embed``). Store work runs in the worker
pool with a connection opened inside that call. Maps not cached yet (and study rankings
that need them) are computed once in a keyed job; the answer is then ``202 {"job": ID}``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from convscope import __version__
from convscope.errors import ConvscopeError, LayerError
from convscope.serve.cache import ResultCache
from convscope.serve.errors import NotFoundError
from convscope.serve.jobs import Job
from convscope.serve.state import ServeState, state_of

router = APIRouter()

RUN_LIST_KEYS = ("id", "name", "study", "model", "dataset", "status", "epochs_completed")
SPRITE_COLUMNS = 40
DIGITS = 4
"""Decimals of map coordinates and confidences: enough for a screen, a smaller answer."""


def json_ready(value: Any) -> Any:
    """``value`` with NaN and infinities as None and numpy scalars as Python numbers."""
    if isinstance(value, np.ndarray):
        return array_list(value)
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def array_list(values: np.ndarray, digits: int | None = None) -> Any:
    """``values`` as (nested) lists of Python numbers, rounded to ``digits``, None where
    not finite: one numpy pass instead of a Python call per number."""
    values = np.asarray(values)
    if values.dtype.kind not in "fc":
        return values.tolist()
    values = values.real.astype(np.float64)
    if digits is not None:
        values = np.round(values, digits)
    finite = np.isfinite(values)
    if finite.all():
        return values.tolist()
    mixed = values.astype(object)
    mixed[~finite] = None
    return mixed.tolist()


def array_json(values: np.ndarray) -> str:
    """``values`` as JSON text (None where not finite), written without building a
    Python list per row. A map is 1,000 ``[x, y]`` pairs a run and epoch; as lists (three
    copies of them: ``tolist``, :func:`json_ready`, FastAPI's encoder) they outlived the
    young generations, and the collector's full passes over the server's heap (torch and
    all: 200-300 ms each) fell in more than 1 slider request in 20: its p95."""
    values = np.asarray(values)
    if values.ndim == 0 or values.size == 0:
        return json.dumps(array_list(values))
    flat = values.ravel().tolist()
    if values.dtype.kind == "b":
        texts = ["true" if v else "false" for v in flat]
    elif values.dtype.kind in "iu":
        texts = list(map(str, flat))
    else:
        texts = list(map(float.__repr__, map(float, flat)))  # what json.dumps writes
        for i in np.flatnonzero(~np.isfinite(values.ravel().real)).tolist():
            texts[i] = "null"
    for size in reversed(values.shape[1:]):  # the innermost axis first
        texts = ["[" + ",".join(texts[i : i + size]) + "]" for i in range(0, len(texts), size)]
    return "[" + ",".join(texts) + "]"


def json_text(value: Any) -> str:
    """``value`` as compact JSON; its numpy arrays by :func:`array_json`, the rest made
    :func:`json_ready` first."""
    if isinstance(value, np.ndarray):
        return array_json(value)
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{json_text(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value):
        return "[" + ",".join(map(json_text, value)) + "]"
    return json.dumps(json_ready(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_answer(body: Any) -> Response:
    """``body`` as the JSON answer, written once by :func:`json_text`. Returned as a
    dict, FastAPI would first copy it with its ``jsonable_encoder`` (20 ms for a
    5-epoch map of 1,000 points) and then encode the copy."""
    return Response(json_text(body), media_type="application/json")


async def with_store(state: ServeState, work: Callable[..., Any], *args: Any) -> Any:
    """``work(store, *args)`` in the worker pool, on a store connection of its own."""

    def call() -> Any:
        with state.store() as store:
            return work(store, *args)

    return await state.run_io(call)


def store_exists(path: Path) -> bool:
    """Whether there is a store (or something else, which opening reports) at ``path``."""
    from convscope.store.files import DB_NAME

    path = Path(path).expanduser()
    return (path.exists() and not path.is_dir()) or (path / DB_NAME).is_file()


# --- runs -----------------------------------------------------------------------------


def last_value(values: np.ndarray | None) -> float | None:
    """The last finite value of a metric, or None."""
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


def run_item(store: Any, record: Any) -> dict[str, Any]:
    """A run as ``runs list --json`` gives it, plus ``test_acc``, planned ``epochs``, ``created``."""
    data = record.to_dict()
    item = {key: data[key] for key in RUN_LIST_KEYS}
    item["test_acc"] = last_value(store.metrics(record.id).get("test_acc"))
    item["epochs"] = (record.config.get("config") or {}).get("epochs")
    item["created"] = record.created
    return json_ready(item)


def run_list(store: Any) -> list[dict[str, Any]]:
    return [run_item(store, record) for record in store.runs()]


def run_document(store: Any, ref: str) -> dict[str, Any]:
    """What ``convscope runs show RUN --json`` prints."""
    return store.run_document(ref)


def run_metrics(store: Any, ref: str) -> dict[str, list[Any]]:
    """The run's metrics as aligned lists: ``{"epoch": [...], "train_loss": [...], ...}``."""
    record = store.run(ref)
    return json_ready({name: values.tolist() for name, values in store.metrics(record.id).items()})


BATCH_LOSS_KIND = "batch_loss"
BATCH_LOSS_NAME = "train"
"""What ``convscope train --record-batch-loss`` stores each epoch: every batch's loss."""
POSITION_DIGITS = 5
"""Decimals of a batch's place on the epoch axis: distinct for 10,000 batches an epoch."""


def batch_loss_document(store: Any, ref: str) -> dict[str, Any]:
    """Every recorded batch's training loss, placed on the curves' epoch axis.

    Batch ``i`` (from 0) of ``n`` in epoch ``e`` sits at ``e - 1 + (i + 1) / n``: epoch
    ``e``'s batches fill ``(e - 1, e]``, its last one at ``e`` beside the epoch's mean
    train loss. ``recorded`` is true when the run keeps batch losses (trained with
    ``--record-batch-loss``; a run still before its first epoch has none yet) or has any;
    false, with empty lists, when it does not (the page says so). Read through the
    store's index (``artifacts``, ``load_array``), never a path from the request.
    """
    record = store.run(ref)
    found = sorted(
        (
            a
            for a in store.artifacts(record.id, kind=BATCH_LOSS_KIND, name=BATCH_LOSS_NAME)
            if a.epoch is not None and a.epoch > 0
        ),
        key=lambda a: a.epoch,
    )
    positions, losses, epochs, batches = [], [], [], []
    for artifact in found:
        values = np.asarray(store.load_array(artifact), dtype=np.float64).ravel()
        if not values.size:
            continue
        count = values.size
        positions.append(artifact.epoch - 1 + np.arange(1, count + 1) / count)
        losses.append(values)
        epochs.append(artifact.epoch)
        batches.append(count)
    asked = bool(record.config.get("record_batch_loss"))

    def joined(parts: list[np.ndarray], digits: int) -> np.ndarray:
        return np.round(np.concatenate(parts), digits) if parts else np.zeros(0)

    return {
        "run": record.id,
        "recorded": asked or bool(epochs),
        "epochs": epochs,
        "batches": batches,
        "epoch": joined(positions, POSITION_DIGITS),
        "loss": joined(losses, DIGITS + 2),
    }


@router.get("/api/health")
async def health() -> dict[str, Any]:
    """The server is up (answers without the store or the workers)."""
    return {"ok": True, "version": __version__}


@router.get("/api/runs")
async def runs(request: Request) -> Any:
    """Every run of the store (``[]`` when there is no store yet)."""
    state = state_of(request)
    if not store_exists(state.config.store):
        return []
    return await with_store(state, run_list)


@router.get("/api/runs/{ref}")
async def run(request: Request, ref: str) -> Any:
    """One run, as ``convscope runs show RUN --json``."""
    return await with_store(state_of(request), run_document, ref)


@router.get("/api/runs/{ref}/metrics")
async def metrics(request: Request, ref: str) -> Any:
    """The run's metrics per epoch (null where missing)."""
    return await with_store(state_of(request), run_metrics, ref)


@router.get("/api/runs/{ref}/batch-loss")
async def batch_loss(request: Request, ref: str) -> Any:
    """Every batch's training loss, for runs trained with ``--record-batch-loss``."""
    return json_answer(await with_store(state_of(request), batch_loss_document, ref))


# --- embeddings -----------------------------------------------------------------------


def projection_params(method: str) -> Any:
    """The map parameters of ``method`` (an unknown one is the library's one-line error)."""
    from convscope.embed.projection import ProjectionParams

    return ProjectionParams(method=method)


def default_layer(store: Any, record: Any) -> str:
    """The run's first recorded layer (in the order it was asked for)."""
    layers = sorted({a.name for a in store.artifacts(record.id, kind="snapshot")})
    asked = [name for name in record.config.get("record") or [] if name in layers]
    if asked or layers:
        return (asked or layers)[0]
    raise LayerError(
        f"run {record.id} recorded no layer outputs; train with --record LAYER "
        "(e.g. --record hidden)"
    )


def map_stamp(
    store: Any, run_id: str, layer: str, params: Any
) -> tuple[list[int], tuple[Any, ...] | None]:
    """The epochs recorded for ``layer`` and, when all their maps and scores are cached,
    what identifies those cached files (their ids and checksums; None when some are not).

    A cached map is written once and never changed, so the stamp names one answer: a new
    epoch, or a map computed again after its run was deleted and trained anew, is
    another stamp.
    """
    from convscope.embed.runs import EMBEDDING_KIND, SCORES_KIND, snapshot_records

    epochs = sorted(snapshot_records(store, run_id, layer))  # unknown layer: close matches
    name = f"{layer}.{params.key()}"
    mapped = {a.epoch: a for a in store.artifacts(run_id, kind=EMBEDDING_KIND, name=name)}
    scored = {a.epoch: a for a in store.artifacts(run_id, kind=SCORES_KIND, name=name)}
    if not set(epochs) <= (mapped.keys() & scored.keys()):
        return epochs, None
    stamp = tuple((e, mapped[e].id, mapped[e].sha256, scored[e].sha256) for e in epochs)
    return epochs, stamp


def map_cached(store: Any, run_id: str, layer: str, params: Any) -> tuple[list[int], bool]:
    """The epochs recorded for ``layer`` and whether all their maps and scores are cached."""
    epochs, stamp = map_stamp(store, run_id, layer, params)
    return epochs, stamp is not None


def embedding_body(result: Any, epoch: int | None) -> dict[str, Any]:
    """The answer of ``/embedding``: one epoch's map, or every epoch's keyed by epoch.

    The points stay numpy arrays (rounded to :data:`DIGITS`): :func:`json_text` writes
    them as text, :func:`json_ready` makes lists of them for a job's result.
    """

    def points(e: int) -> np.ndarray:
        return np.round(np.asarray(result.layouts[e], dtype=np.float64), DIGITS)

    def scores(e: int) -> dict[str, float | None] | None:
        return json_ready(result.scores[e].to_dict()) if e in result.scores else None

    body: dict[str, Any] = json_ready(
        {
            "run": result.run_id,
            "layer": result.layer,
            "method": result.params.method,
            "epoch": epoch,
            "epochs": result.epochs,
            "labels": np.asarray(result.labels, dtype=np.int64).tolist(),
            "classes": list(result.class_names),
        }
    )
    if epoch is None:
        body["points"] = {str(e): points(e) for e in result.epochs}
        body["scores"] = {str(e): scores(e) for e in result.epochs}
    else:
        body["points"], body["scores"] = points(epoch), scores(epoch)
    return body


def compute_embedding(
    store: Any,
    run_id: str,
    layer: str,
    params: Any,
    epoch: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Map (or read back) every epoch of the run's layer; the answer's body."""
    from convscope.embed.runs import embed_run

    result = retry_once_cached(lambda: embed_run(store, run_id, layer, params, progress=progress))
    return embedding_body(result, epoch)


def embedding_result(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """:func:`compute_embedding`'s body as a job's result: plain lists, no arrays."""
    return json_ready(compute_embedding(*args, **kwargs))


def retry_once_cached(work: Callable[[], Any]) -> Any:
    """``work()``, run again once if another job cached the same map meanwhile."""
    from convscope.store import StoreError

    try:
        return work()
    except StoreError as error:
        if "written once" not in str(error):
            raise
        return work()


def embedding_plan(
    store: Any,
    ref: str,
    layer: str | None,
    params: Any,
    epoch: int | None,
    cache: ResultCache | None = None,
) -> tuple[str, str, str | None]:
    """``(run id, layer, JSON text)``: the answer when every map is cached, else None.

    The text is kept in ``cache`` under the cached maps' :func:`map_stamp`, so asking
    again (the explorer's slider, another page) reads only the store's index: not the
    maps' files, nor the work of writing 2,000 numbers an epoch as JSON.
    """
    record = store.run(ref)
    layer = layer or default_layer(store, record)
    epochs, stamp = map_stamp(store, record.id, layer, params)
    if epoch is not None and epoch not in epochs:
        raise ConvscopeError(
            f"run {record.id} has no recorded epoch {epoch} of layer {layer!r}; "
            f"recorded epochs: {', '.join(map(str, epochs))}"
        )
    if stamp is None:
        return record.id, layer, None

    def answer() -> str:
        return json_text(compute_embedding(store, record.id, layer, params, epoch))

    if cache is None:
        return record.id, layer, answer()
    key = ("runs/embedding", record.id, layer, params.key(), epoch, stamp)
    return record.id, layer, cache.get_or_compute(key, answer, size=len)


@router.get("/api/runs/{ref}/embedding")
async def embedding(
    request: Request,
    ref: str,
    layer: str | None = None,
    method: str = "umap",
    epoch: int | None = None,
) -> Any:
    """The 2-D map of a recorded layer: from the cache, or ``202 {"job"}`` while computed."""
    state = state_of(request)
    params = projection_params(method)
    plan = await with_store(state, embedding_plan, ref, layer, params, epoch, state.cache)
    run_id, layer, text = plan
    if text is not None:
        return Response(text, media_type="application/json")

    def work(job: Job) -> dict[str, Any]:
        def progress(done: int, total: int) -> None:
            job.report(done, total, f"mapped epoch {done} of {total}")

        with state.store() as store:
            return embedding_result(store, run_id, layer, params, epoch, progress)

    key = f"embedding:{run_id}:{layer}:{params.key()}:{epoch}"
    return JSONResponse({"job": state.jobs.submit(key, work).id}, status_code=202)


# --- probe predictions ----------------------------------------------------------------


def class_names(dataset: str, labels: np.ndarray) -> list[str]:
    from convscope.data.classes import class_names_for, dataset_class_names

    names = dataset_class_names(dataset)
    return list(names if names is not None else class_names_for(None, int(labels.max()) + 1))


def image_size(dataset: str) -> int | None:
    """The side of the dataset's images, or None for a dataset convscope does not know."""
    from convscope.data.registry import get_info

    try:
        return int(get_info(dataset).image_shape[0])
    except (ConvscopeError, KeyError, IndexError):
        return None


def probe_document(store: Any, ref: str) -> dict[str, Any]:
    """The probe set's labels and, per epoch, the predicted class and its probability."""
    record = store.run(ref)
    labels = store.run_array(record.id, "probe", "labels").astype(np.int64)
    indices = store.run_array(record.id, "probe", "indices").astype(np.int64)
    recorded = [
        a
        for a in store.artifacts(record.id, kind="predictions", name="probe")
        if a.epoch is not None
    ]
    predictions, confidence = {}, {}
    for artifact in recorded:
        probabilities = store.load_array(artifact)
        predictions[str(artifact.epoch)] = probabilities.argmax(axis=1).tolist()
        confidence[str(artifact.epoch)] = np.round(
            probabilities.max(axis=1).astype(np.float64), DIGITS
        ).tolist()
    epochs = sorted(a.epoch for a in recorded) or [e.epoch for e in store.epochs(record.id)]
    return json_ready(
        {
            "run": record.id,
            "classes": class_names(record.dataset, labels),
            "labels": labels.tolist(),
            "indices": indices.tolist(),
            "epochs": epochs,
            "predictions": predictions,
            "confidence": confidence,
            "sprite": {
                "url": f"api/runs/{record.id}/probe/sprite.png",
                "size": image_size(record.dataset),
                "columns": min(SPRITE_COLUMNS, max(1, len(labels))),
            },
        }
    )


def sprite(images: np.ndarray, columns: int = SPRITE_COLUMNS) -> bytes:
    """``N x H x W[x C]`` uint8 images tiled row-major, ``columns`` to a row, as PNG bytes."""
    from PIL import Image

    count, height, width = images.shape[:3]
    columns = min(columns, count)
    rows = -(-count // columns)
    grid = np.zeros((rows * height, columns * width, *images.shape[3:]), dtype=np.uint8)
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        grid[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    if grid.ndim == 3 and grid.shape[2] == 1:
        grid = grid[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    return buffer.getvalue()


def probe_sprite(store: Any, ref: str) -> bytes:
    """The run's probe images as one PNG grid; a :class:`NotFoundError` when they are gone."""
    from convscope.train.run import probe_images

    record = store.run(ref)
    images = probe_images(store, record)
    if images is None:
        raise NotFoundError(
            f"the probe images of run {record.id} cannot be rebuilt: its dataset is missing "
            "or changed (`convscope data list` shows the datasets)"
        )
    return sprite(np.asarray(images, dtype=np.uint8))


@router.get("/api/runs/{ref}/probe")
async def probe(request: Request, ref: str) -> Any:
    """What the model predicted for each probe image, epoch by epoch."""
    return await with_store(state_of(request), probe_document, ref)


@router.get("/api/runs/{ref}/probe/sprite.png")
async def probe_sprite_png(request: Request, ref: str) -> Response:
    """Every probe image in one PNG, row-major, ``columns`` to a row."""
    png = await with_store(state_of(request), probe_sprite, ref)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


# --- studies --------------------------------------------------------------------------


def study_list(store: Any) -> list[dict[str, Any]]:
    """Every study: its name, the ids of its runs and its models (in training order)."""
    studies = []
    for name in store.studies():
        records = store.runs(study=name)
        models = list(dict.fromkeys(r.model for r in records))
        studies.append({"name": name, "runs": [r.id for r in records], "models": models})
    return studies


def ranking_plan(store: Any, name: str, params: Any) -> tuple[int, dict[str, Any] | None]:
    """``(runs, document)``: the ``report --json`` document when every map is cached."""
    from convscope.report.collect import recorded_layer
    from convscope.store.results import resolve_runs

    store.runs_of_study(name)  # an unknown study: its one line, with close names
    _, run_ids = resolve_runs(store, [name])
    layer = recorded_layer(store, run_ids)
    cached = layer is None or all(map_cached(store, i, layer, params)[1] for i in run_ids)
    return len(run_ids), ranking_document(store, name, params) if cached else None


def ranking_document(
    store: Any, name: str, params: Any, progress: Callable[[str, int, int], None] | None = None
) -> dict[str, Any]:
    """What ``convscope report NAME --json`` prints."""
    from convscope.report.collect import collect_ranking

    ranked = retry_once_cached(
        lambda: collect_ranking(store, [name], params=params, progress=progress)
    )
    return json_ready(ranked.to_dict())


@router.get("/api/studies")
async def studies(request: Request) -> Any:
    """Every study of the store (``[]`` when there is no store yet)."""
    state = state_of(request)
    if not store_exists(state.config.store):
        return []
    return await with_store(state, study_list)


@router.get("/api/studies/{name}")
async def study(request: Request, name: str, method: str = "umap") -> Any:
    """The study's verdict and ranking, or ``202 {"job"}`` while its maps are computed."""
    state = state_of(request)
    params = projection_params(method)
    count, document = await with_store(state, ranking_plan, name, params)
    if document is not None:
        return document

    def work(job: Job) -> dict[str, Any]:
        finished = 0

        def progress(label: str, done: int, total: int) -> None:
            nonlocal finished
            if label == "maps":
                finished = done
                job.report(done, count, f"mapped {done} of {count} runs")
            else:
                job.report(finished + done / max(total, 1), count, label)

        with state.store() as store:
            return ranking_document(store, name, params, progress)

    job = state.jobs.submit(f"study:{name}:{params.key()}", work)
    return JSONResponse({"job": job.id}, status_code=202)
