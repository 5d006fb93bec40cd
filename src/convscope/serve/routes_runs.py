"""Routes over the run store: runs, their metrics, maps, probe predictions, and studies.

Thin over the library: each answer is what the CLI prints for the same question
(``runs list/show --json``, ``report --json``, ``embed``). Store work runs in the worker
pool with a connection opened inside that call. Maps not cached yet (and study rankings
that need them) are computed once in a keyed job; the answer is then ``202 {"job": ID}``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from convscope import __version__
from convscope.errors import ConvscopeError, LayerError
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
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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


def map_cached(store: Any, run_id: str, layer: str, params: Any) -> tuple[list[int], bool]:
    """The epochs recorded for ``layer`` and whether all their maps and scores are cached."""
    from convscope.embed.runs import EMBEDDING_KIND, SCORES_KIND, snapshot_records

    epochs = sorted(snapshot_records(store, run_id, layer))  # unknown layer: close matches
    name = f"{layer}.{params.key()}"
    mapped = {a.epoch for a in store.artifacts(run_id, kind=EMBEDDING_KIND, name=name)}
    scored = {a.epoch for a in store.artifacts(run_id, kind=SCORES_KIND, name=name)}
    return epochs, set(epochs) <= (mapped & scored)


def embedding_body(result: Any, epoch: int | None) -> dict[str, Any]:
    """The answer of ``/embedding``: one epoch's map, or every epoch's keyed by epoch."""

    def points(e: int) -> list[list[float]]:
        return np.round(np.asarray(result.layouts[e], dtype=np.float64), DIGITS).tolist()

    def scores(e: int) -> dict[str, float] | None:
        return result.scores[e].to_dict() if e in result.scores else None

    body: dict[str, Any] = {
        "run": result.run_id,
        "layer": result.layer,
        "method": result.params.method,
        "epoch": epoch,
        "epochs": result.epochs,
        "labels": [int(label) for label in result.labels],
        "classes": list(result.class_names),
    }
    if epoch is None:
        body["points"] = {str(e): points(e) for e in result.epochs}
        body["scores"] = {str(e): scores(e) for e in result.epochs}
    else:
        body["points"], body["scores"] = points(epoch), scores(epoch)
    return json_ready(body)


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
    store: Any, ref: str, layer: str | None, params: Any, epoch: int | None
) -> tuple[str, str, dict[str, Any] | None]:
    """``(run id, layer, body)``: the body when every map is cached, else None."""
    record = store.run(ref)
    layer = layer or default_layer(store, record)
    epochs, cached = map_cached(store, record.id, layer, params)
    if epoch is not None and epoch not in epochs:
        raise ConvscopeError(
            f"run {record.id} has no recorded epoch {epoch} of layer {layer!r}; "
            f"recorded epochs: {', '.join(map(str, epochs))}"
        )
    body = compute_embedding(store, record.id, layer, params, epoch) if cached else None
    return record.id, layer, body


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
    run_id, layer, body = await with_store(state, embedding_plan, ref, layer, params, epoch)
    if body is not None:
        return body

    def work(job: Job) -> dict[str, Any]:
        def progress(done: int, total: int) -> None:
            job.report(done, total, f"mapped epoch {done} of {total}")

        with state.store() as store:
            return compute_embedding(store, run_id, layer, params, epoch, progress)

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
