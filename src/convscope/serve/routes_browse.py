"""The model explorer's browse routes: choosing a model, an epoch and an input.

Thin over the library, as ``docs/dashboard/api.md`` says: a model's facts and its run's
checkpoints (``/info``, ``/checkpoints``), the sample photos, pages of a dataset's
images for the thumbnail browser, one image's prediction (a record of ``convscope
predict --json``) and a run's kernels over its recorded epochs (``convscope kernels
run:ID --layer L --epochs all``). Model work runs in the worker pool (``state.run``; a
prediction asked twice comes from the result cache), store reads and pictures off the
model lock (``state.run_io``). A dataset that would have to be downloaded is a 409
naming ``convscope data fetch``: a request never starts a download.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from convscope.errors import ConvscopeError, DataError, ImageError
from convscope.serve import images
from convscope.serve.errors import NotFoundError
from convscope.serve.routes_runs import json_ready, with_store
from convscope.serve.state import ServeState, state_of

router = APIRouter()

MAX_PAGE = 200
"""Most images one page of ``/api/datasets/{name}/images`` lists."""

KERNEL_COLUMNS = 16
"""Kernels a kernels-over-epochs figure shows by default, as ``convscope kernels --epochs``."""


# --------------------------------------------------------------------------- models


def pinned_model(state: ServeState, spec: str) -> tuple[str, str | None, list[int] | None]:
    """``(MODEL, run id, the run's checkpoint epochs)`` for a request's ``spec``.

    A ``run:`` ref becomes ``run:FULLID@EPOCH`` (its latest epoch when none is given), so
    a page that keeps it keeps that epoch; any other MODEL is kept as the request gave it.
    """
    resolved = state.models.resolve(spec)  # paths and unknown names refused here
    if not resolved.startswith("run:") or resolved in state.models.given.values():
        return spec, None, None
    ref, at, epoch = resolved.removeprefix("run:").partition("@")
    if not ref:
        state.models.key(resolved)  # its one line: give a run after run:
    with state.store() as store:
        record = store.run(ref)
        epochs = sorted(store.checkpoints(record.id))
    if at:
        return f"run:{record.id}@{epoch}", record.id, epochs
    return (f"run:{record.id}@{epochs[-1]}" if epochs else f"run:{record.id}"), record.id, epochs


def model_info(state: ServeState, spec: str) -> dict[str, Any]:
    from convscope.data.classes import dataset_class_names
    from convscope.probe.summary import count_params

    pinned, run_id, epochs = pinned_model(state, spec)
    model = state.models.get(pinned)  # an epoch the run lacks: 404 with its epochs
    classes = model.class_names or dataset_class_names(model.dataset)
    epoch = pinned.rpartition("@")[2] if run_id is not None else ""
    return {
        "name": model.name,
        "model": pinned,
        "weights": model.weights,
        "dataset": model.dataset,
        "input_shape": list(model.input_spec.shape),
        "params": count_params(model.module)[0],
        "classes": list(classes) if classes is not None else None,
        "run": run_id,
        "epoch": int(epoch) if epoch.isdigit() else None,
        "epochs": epochs,
    }


@router.get("/api/models/{model:path}/info")
async def info(request: Request, model: str) -> dict[str, Any]:
    """A model's name, weights, dataset, input, size and classes; a run's epochs.

    ``model`` is the MODEL string to keep: ``run:ID`` comes back as ``run:FULLID@LATEST``.
    """
    state = state_of(request)
    return await state.run(model_info, state, model)


def run_checkpoints(store: Any, ref: str) -> dict[str, Any]:
    record = store.run(ref)
    epochs = sorted(store.checkpoints(record.id))
    return {
        "run": record.id,
        "name": record.name,
        "model": record.model,
        "dataset": record.dataset,
        "epochs": epochs,
        "latest": epochs[-1] if epochs else None,
    }


@router.get("/api/runs/{ref}/checkpoints")
async def checkpoints(request: Request, ref: str) -> dict[str, Any]:
    """The epochs a run has a checkpoint of (epoch 0: before the first update)."""
    return await with_store(state_of(request), run_checkpoints, ref)


# --------------------------------------------------------------------------- inputs


def sample_list() -> list[dict[str, Any]]:
    """Every sample photo that can be read here (scikit-image's need it installed)."""
    from convscope.data.spec import SAMPLE_IMAGES, sample_image

    samples = []
    for name in SAMPLE_IMAGES:
        try:
            pixels = sample_image(name)
        except ImageError:  # its package is not installed
            continue
        height, width = pixels.shape[:2]
        channels = pixels.shape[2] if pixels.ndim == 3 else 1
        samples.append({"spec": f"sample:{name}", "name": name, "shape": [height, width, channels]})
    return samples


@router.get("/api/samples")
async def samples(request: Request) -> list[dict[str, Any]]:
    """The photos a request may name as ``sample:NAME``, with their size ``[H, W, C]``."""
    return await state_of(request).run_io(sample_list)


def dataset_info(name: str) -> Any:
    """The registry's dataset ``name``; an unknown one is a 404 with the close names."""
    from convscope.data.registry import DATASETS, get_info
    from convscope.naming import close_matches

    try:
        return get_info(name)
    except DataError:
        known = ", ".join(DATASETS)
        raise NotFoundError(
            f"unknown dataset {name!r}{close_matches(name.lower(), DATASETS)}; "
            f"the datasets are {known} (`convscope data list`)"
        ) from None


def local_labels_or_409(info: Any, split: str) -> Any:
    """The labels of a split on this machine; one that needs a download is a 409."""
    from convscope.data.browse import local_labels, not_local_line

    labels = local_labels(info, split)
    if labels is None:
        raise HTTPException(409, not_local_line(info))
    return labels


def check_page(start: int, count: int) -> None:
    if count < 1 or count > MAX_PAGE:
        raise ConvscopeError(f"count must be 1 to {MAX_PAGE}, got {count}")
    if start < 0:
        raise ConvscopeError(f"start counts from 0, got {start}")


def image_page(name: str, split: str, start: int, count: int, label: str | None) -> dict[str, Any]:
    import numpy as np

    from convscope.probe.classes import one_class

    check_page(start, count)
    info = dataset_info(name)
    info.split(split)  # an unknown split: the registry's line, before any file is read
    classes = list(info.class_names)
    wanted = None if label is None else one_class(label.strip(), classes, what="label")
    labels = local_labels_or_409(info, split)
    indices = np.arange(len(labels)) if wanted is None else np.flatnonzero(labels == wanted)
    page = indices[start : start + count]
    return {
        "dataset": info.name,
        "split": split,
        "total": len(indices),
        "start": start,
        "count": len(page),
        "classes": classes,
        "images": [
            {
                "spec": f"{info.name}:{split}:{int(i)}",
                "label": int(labels[i]),
                "class": classes[int(labels[i])],
            }
            for i in page
        ],
    }


@router.get("/api/datasets/{name}/images")
async def dataset_images(
    request: Request,
    name: str,
    split: str = "test",
    start: int = 0,
    count: int = 24,
    label: str | None = None,
) -> dict[str, Any]:
    """A page of a dataset split's images: their SPECs, labels and class names.

    ``label`` (an index or a class name) keeps that class only, and ``start`` then counts
    within it; ``count`` is 1 to 200. A ``start`` at or past the end is not an error: the
    page is empty (``count`` 0) and ``total`` says how many there are. Only the label
    file is read; thumbnails are ``/api/image.png?image=SPEC``.
    """
    return await state_of(request).run_io(image_page, name, split, start, count, label)


# --------------------------------------------------------------------------- predict


def require_local_image(spec: str) -> None:
    """Refuse (409) a dataset SPEC whose dataset would have to be downloaded first."""
    from convscope.data.spec import parse_dataset_spec

    if spec.startswith(("sample:", "upload:")):
        return
    dataset, split, _, _ = parse_dataset_spec(spec, limit=None)
    images.require_local(dataset, split)


def prediction(state: ServeState, spec: str, image: str, top: int) -> dict[str, Any]:
    """One image's record of ``predict --json``, from the result cache when asked before."""
    from convscope.models.loaded import LoadedModel
    from convscope.probe.predict import predict
    from convscope.serve.routes_tiles import check_upload, picture_of

    if top < 1:
        raise ConvscopeError(f"top must be at least 1, got {top}")
    image = images.check_image_spec(image)
    check_upload(state, image)

    def compute(model: LoadedModel) -> dict[str, Any]:
        require_local_image(image)
        result = predict(model, [picture_of(state, image, model.input_spec)], top_k=top)
        record = result.predictions[0]
        if top > len(record.probs):
            raise ConvscopeError(
                f"top must be 1 to {len(record.probs)} (the classes of {model.name}), got {top}"
            )
        body = {"model": result.model, "weights": result.model_weights, **record.to_dict()}
        return json_ready(body)

    return state.cached(spec, "predict", {"image": image, "top": top}, compute)


@router.get("/api/models/{model:path}/predict")
async def model_predict(request: Request, model: str, image: str, top: int = 5) -> Any:
    """One record of ``convscope predict MODEL --image SPEC --top K --json``, with the
    model and its weights: ``{"model", "weights", "input", "label"?, "top", "probs"}``."""
    state = state_of(request)
    return await state.run(prediction, state, model, image, top)


# --------------------------------------------------------------------------- kernels


def kernel_history(store: Any, ref: str, layer: str) -> dict[str, Any]:
    from convscope.probe.kernels import kernels_over_epochs

    history = kernels_over_epochs(store, ref, layer)
    health = []
    for epoch, numbers in zip(history.epochs, history.health(), strict=True):
        summary = numbers.summary()
        health.append(
            {
                "epoch": epoch,
                "dead": summary["dead"],
                "duplicates": summary["duplicates"],
                "noisy": summary["noisy"],
                "mean_norm": summary["norm_mean"],
            }
        )
    return json_ready(
        {"run": history.run_id, "layer": history.layer, "epochs": history.epochs, "health": health}
    )


@router.get("/api/runs/{ref}/kernels")
async def run_kernels(request: Request, ref: str, layer: str) -> dict[str, Any]:
    """The health of a layer's kernels at every epoch the run recorded them: dead,
    near-duplicate and noisy kernels and the mean kernel norm (see ``kernels --health``)."""
    return await with_store(state_of(request), kernel_history, ref, layer)


def kernel_history_png(
    store: Any, ref: str, layer: str, norm: str | None, reduce: str | None, limit: int | None
) -> bytes:
    from convscope.probe.kernels import kernels_over_epochs
    from convscope.render.figures import figure_png

    history = kernels_over_epochs(store, ref, layer)
    grid = history.grid(norm or "layer", reduce=reduce, limit=limit or KERNEL_COLUMNS)
    return figure_png(grid.figure())


@router.get("/api/runs/{ref}/kernels.png")
async def run_kernels_png(
    request: Request,
    ref: str,
    layer: str,
    norm: str | None = None,
    reduce: str | None = None,
    limit: int | None = None,
) -> Response:
    """The kernels over epochs, one row per epoch, as ``convscope kernels run:ID --layer L
    --epochs all --out F.png`` draws them (one shared scale, the first 16 kernels)."""
    state = state_of(request)
    data = await with_store(state, kernel_history_png, ref, layer, norm, reduce, limit)
    return Response(data, media_type="image/png")
