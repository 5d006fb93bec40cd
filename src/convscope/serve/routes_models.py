"""The dashboard's model routes: thin HTTP views over the probes the CLI uses.

Each route parses its parameters, takes the model from the pool and calls the same
library function as the CLI command, in the worker pool: JSON is the result's
``to_dict()`` (what ``--json`` prints) and a ``.png`` is the same result's figure, so a
page shows the numbers the CLI prints. Activation maximisation runs as a job.

Results and pictures are kept in the server's result cache
(:class:`~convscope.serve.cache.ResultCache`, via :meth:`ServeState.cached`), keyed by
the model's identity and weights, the route and its parameters: a JSON answer and its
PNG share one computation, and a request asked again is not computed again. Images
named by dataset or sample are read once (:func:`~convscope.serve.routes_tiles.picture_of`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from convscope.errors import ConvscopeError
from convscope.models.loaded import LoadedModel
from convscope.probe.exclusive import exclusive
from convscope.serve import images
from convscope.serve.jobs import Job
from convscope.serve.routes_tiles import check_upload, kernel_health, picture_of
from convscope.serve.state import ServeState, state_of

MAXIMIZE_BODY_BYTES = 64 * 1024
"""A maximize request is a few options; anything larger is refused unread."""

router = APIRouter()

MAX_ATTRIBUTION_IMAGES = 8
"""Most images one attribution draws, as ``convscope attribute``."""

MAXIMIZE_OPTIONS = {"class", "channel", "objective", "steps", "starts", "seed"}
MAX_STEPS, MAX_STARTS = 4096, 32
"""Bounds of a maximisation's ``steps`` and ``starts`` a request may ask for."""


def png(data: bytes) -> Response:
    return Response(data, media_type="image/png")


def figure_bytes(figure: Any) -> bytes:
    from convscope.render.figures import figure_png

    return figure_png(figure)


# --------------------------------------------------------------------------- models


@router.get("/api/models")
async def list_models(request: Request) -> list[dict[str, Any]]:
    """``convscope models --json``, then the names given with ``--model``."""
    state = state_of(request)
    return await state.run(state.models.catalog)


def _layers(state: ServeState, spec: str) -> list[dict[str, Any]]:
    from convscope.probe.summary import summarize

    model = state.models.get(spec)
    with exclusive(model):
        result = summarize(model, depth=64)
    return [
        {"name": r.name, "type": r.type, "output_shape": r.output_shape, "params": r.params}
        for r in result.layers
    ]


@router.get("/api/models/{model:path}/layers")
async def model_layers(request: Request, model: str) -> list[dict[str, Any]]:
    """As ``convscope layers MODEL --json``."""
    state = state_of(request)
    return await state.run(_layers, state, model)


def _summary(state: ServeState, spec: str, depth: int) -> dict[str, Any]:
    from convscope.probe.summary import summarize

    model = state.models.get(spec)
    with exclusive(model):
        return summarize(model, depth=depth).to_dict()


@router.get("/api/models/{model:path}/summary")
async def model_summary(request: Request, model: str, depth: int = 4) -> dict[str, Any]:
    """As ``convscope summary MODEL --json``."""
    state = state_of(request)
    return await state.run(_summary, state, model, depth)


def _graph(state: ServeState, spec: str) -> Any:
    from convscope.probe.graph import model_graph

    model = state.models.get(spec)
    with exclusive(model):
        return model_graph(model)


@router.get("/api/models/{model:path}/graph")
async def model_graph_json(request: Request, model: str) -> dict[str, Any]:
    """The architecture diagram's graph, as ``convscope diagram MODEL --json``."""
    state = state_of(request)
    graph = await state.run_alone(_graph, state, model)
    return graph.to_dict()


@router.get("/api/models/{model:path}/graph.svg")
async def model_graph_svg(request: Request, model: str) -> Response:
    """The architecture diagram, as ``convscope diagram MODEL --out F.svg`` draws it."""
    state = state_of(request)
    graph = await state.run_alone(_graph, state, model)
    return Response(await state.run(graph.to_svg), media_type="image/svg+xml")


# --------------------------------------------------------------------------- kernels


def _kernels(
    state: ServeState, spec: str, layer: str, options: dict[str, Any], draw: bool
) -> dict[str, Any] | bytes:
    from convscope.probe.kernels import kernel_set

    def compute(model: LoadedModel) -> dict[str, Any] | bytes:
        kernels = kernel_set(model, layer)
        grid = kernels.grid(options["norm"], **_grid_options(options))
        if draw:
            return figure_bytes(grid.figure())
        return grid.to_dict() | {"type": kernels.layer_type, "nonfinite": list(kernels.nonfinite)}

    route = "kernels.png" if draw else "kernels"
    result = state.cached(spec, route, {"layer": layer, **options}, compute)
    if draw:
        return result
    assert isinstance(result, dict)
    return result | {"health": kernel_health(state, spec, layer)}


def _grid_options(options: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in options.items() if name != "norm"}


def _kernel_options(
    norm: str | None, reduce: str | None, per_channel: bool, limit: int | None
) -> dict[str, Any]:
    return {"norm": norm or "per-kernel", "reduce": reduce, "per_channel": per_channel,
            "limit": limit}  # fmt: skip


@router.get("/api/models/{model:path}/kernels")
async def model_kernels(
    request: Request,
    model: str,
    layer: str,
    norm: str | None = None,
    reduce: str | None = None,
    per_channel: bool = False,
    limit: int | None = None,
) -> dict[str, Any]:
    """As ``convscope kernels MODEL --layer L --health --json``."""
    state = state_of(request)
    options = _kernel_options(norm, reduce, per_channel, limit)
    return await state.run(_kernels, state, model, layer, options, False)


@router.get("/api/models/{model:path}/kernels.png")
async def model_kernels_png(
    request: Request,
    model: str,
    layer: str,
    norm: str | None = None,
    reduce: str | None = None,
    per_channel: bool = False,
    limit: int | None = None,
) -> Response:
    """The kernel grid, as ``convscope kernels MODEL --layer L --out F.png``."""
    state = state_of(request)
    options = _kernel_options(norm, reduce, per_channel, limit)
    return png(await state.run(_kernels, state, model, layer, options, True))


# --------------------------------------------------------------------------- features


def _features(state: ServeState, spec: str, layer: str, image: str, call: int) -> Any:
    from convscope.probe.activations import resolve_layers
    from convscope.probe.features import feature_maps, parse_layers

    layers = parse_layers(layer)

    def compute(model: LoadedModel) -> Any:
        resolve_layers(model.module, layers)  # name errors before reading any image
        picture = picture_of(state, image, model.input_spec)
        return feature_maps(model, picture, layers, call=call)

    params = {"layers": layers, "image": image.strip(), "call": call}
    check_upload(state, image)
    return state.cached(spec, "features", params, compute)


def _features_png(
    state: ServeState, spec: str, layer: str, image: str, call: int, scale: str, top: int | None
) -> bytes:
    result = _features(state, spec, layer, image, call)
    params = {"layers": result.names, "image": image.strip(), "call": call, "scale": scale,
              "top": top}  # fmt: skip
    return state.cached(
        spec, "features.png", params, lambda _: figure_bytes(result.figure(scale=scale, top=top))
    )


@router.get("/api/models/{model:path}/features")
async def model_features(
    request: Request, model: str, layer: str, image: str, call: int = -1
) -> dict[str, Any]:
    """``{"layer", "shape", "min", "max", ...}`` of the first layer, then the whole
    ``features --json`` document."""
    state = state_of(request)
    result = await state.run(_features, state, model, layer, image, call)
    data = result.to_dict()
    first = dict(data["layers"][0])
    return {"layer": first.pop("name"), **first, **data}


@router.get("/api/models/{model:path}/features.png")
async def model_features_png(
    request: Request,
    model: str,
    layer: str,
    image: str,
    call: int = -1,
    scale: str = "shared",
    top: int | None = None,
) -> Response:
    """The feature-map figure, as ``convscope features ... --out F.png``."""
    state = state_of(request)
    if scale not in ("shared", "per-map"):
        raise ConvscopeError(f"scale takes shared or per-map, not {scale!r}")
    if top is not None and top < 1:
        raise ConvscopeError(f"top must be at least 1, got {top}")
    return png(await state.run(_features_png, state, model, layer, image, call, scale, top))


# --------------------------------------------------------------------------- explain


def parse_position(text: str) -> tuple[int, int]:
    """``"3,7"`` -> ``(3, 7)``; anything else is a one-line error."""
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise ConvscopeError(f"at takes ROW,COL such as 3,7 (0-based), got {text!r}") from None
    if row < 0 or col < 0:
        raise ConvscopeError(f"at: ROW,COL count from 0, got {text!r}")
    return row, col


def _explain(
    state: ServeState, spec: str, layer: str, image: str, at: str, channel: int | None, call: int
) -> Any:
    from convscope.probe.explain import explain, explainable

    position = parse_position(at)

    def compute(model: LoadedModel) -> Any:
        explainable(model.module, layer)  # layer errors before reading any image
        picture = picture_of(state, image, model.input_spec)
        return explain(model, layer, picture, position, channel=channel, call=call)

    params = {"layer": layer, "image": image.strip(), "at": position, "channel": channel,
              "call": call}  # fmt: skip
    check_upload(state, image)
    return state.cached(spec, "explain", params, compute)


def _explain_png(state: ServeState, spec: str, *args: Any) -> bytes:
    result = _explain(state, spec, *args)
    return state.cached(
        spec, "explain.png", {"args": args}, lambda _: figure_bytes(result.figure())
    )


@router.get("/api/models/{model:path}/explain")
async def model_explain(
    request: Request,
    model: str,
    layer: str,
    image: str,
    at: str,
    channel: int | None = None,
    call: int = -1,
) -> dict[str, Any]:
    """As ``convscope explain MODEL --layer L --image SPEC --at R,C --json``."""
    state = state_of(request)
    result = await state.run(_explain, state, model, layer, image, at, channel, call)
    return result.to_dict()


@router.get("/api/models/{model:path}/explain.png")
async def model_explain_png(
    request: Request,
    model: str,
    layer: str,
    image: str,
    at: str,
    channel: int | None = None,
    call: int = -1,
) -> Response:
    """The explanation figure, as ``convscope explain ... --out F.png``."""
    state = state_of(request)
    return png(await state.run(_explain_png, state, model, layer, image, at, channel, call))


# --------------------------------------------------------------------------- attribute


def _attribute(
    state: ServeState,
    spec: str,
    image: str,
    method: str,
    target: str | None,
    layer: str | None,
) -> list[Any]:
    from convscope.probe.attribute import attribute_images, parse_methods

    methods = parse_methods(method)

    def compute(model: LoadedModel) -> list[Any]:
        pictures = images.resolve_images(
            image, state.uploads, model.input_spec, limit=MAX_ATTRIBUTION_IMAGES
        )
        return attribute_images(model, pictures, methods, target=target, layer=layer)

    params = {"image": image.strip(), "methods": list(methods), "target": target, "layer": layer}
    check_upload(state, image)
    return state.cached(spec, "attribute", params, compute)


def _attribute_png(state: ServeState, spec: str, *args: Any) -> bytes:
    from convscope.render.attribution import attribution_figure

    results = _attribute(state, spec, *args)
    return state.cached(
        spec, "attribute.png", {"args": args}, lambda _: figure_bytes(attribution_figure(results))
    )


@router.get("/api/models/{model:path}/attribute")
async def model_attribute(
    request: Request,
    model: str,
    image: str,
    method: str,
    target: str | None = None,
    layer: str | None = None,
) -> Any:
    """As ``convscope attribute ... --json`` (one image: its record; more: a list)."""
    state = state_of(request)
    results = await state.run(_attribute, state, model, image, method, target, layer)
    data = [r.to_dict() for r in results]
    return data[0] if len(data) == 1 else data


@router.get("/api/models/{model:path}/attribute.png")
async def model_attribute_png(
    request: Request,
    model: str,
    image: str,
    method: str,
    target: str | None = None,
    layer: str | None = None,
) -> Response:
    """The attribution figure, as ``convscope attribute ... --out F.png``."""
    state = state_of(request)
    return png(await state.run(_attribute_png, state, model, image, method, target, layer))


# --------------------------------------------------------------------------- maximize


def maximize_options(body: Any) -> dict[str, Any]:
    """The options of a maximisation request, checked: ``class`` or ``channel``, and
    optional ``objective``, ``steps``, ``starts`` and ``seed``."""
    if not isinstance(body, dict):
        raise ConvscopeError('send a JSON object such as {"class": 3} or {"channel": "L:C"}')
    unknown = sorted(set(body) - MAXIMIZE_OPTIONS)
    if unknown:
        raise ConvscopeError(
            f"unknown maximize option {unknown[0]!r}; "
            f"the options are {', '.join(sorted(MAXIMIZE_OPTIONS))}"
        )
    if ("class" in body) == ("channel" in body):
        raise ConvscopeError('give "class" (an index or a name) or "channel" ("L:C"), one of them')
    target = body.get("class", body.get("channel"))
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise ConvscopeError(f"a class is an index or a name and a channel L:C, not {target!r}")
    if "channel" in body and not isinstance(target, str):
        raise ConvscopeError(f'"channel" is LAYER:C such as conv2d_1:0, not {target!r}')
    bounds = {"steps": (1, MAX_STEPS), "starts": (1, MAX_STARTS), "seed": (0, 2**32 - 1)}
    for name, (low, high) in bounds.items():
        value = body.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            raise ConvscopeError(
                f"{name} must be a whole number from {low} to {high}, not {value!r}"
            )
    objective = body.get("objective")
    if objective is not None and not isinstance(objective, str):
        raise ConvscopeError(f"objective is logit, prob or mean, not {objective!r}")
    return {key: value for key, value in body.items() if value is not None}


def _maximize_key(state: ServeState, spec: str, options: dict[str, Any]) -> str:
    """The job key of a maximisation: the model's pool key and the options."""
    key = state.models.key(state.models.resolve(spec))
    return f"maximize {key} {json.dumps(options, sort_keys=True)}"


def _check_maximize(state: ServeState, spec: str, options: dict[str, Any]) -> None:
    """Load the model and check the targets and settings, so a bad class is a 400 now,
    not a failed job."""
    from convscope.probe.maximize import default_settings, maximize_targets

    model = state.models.get(spec)
    with exclusive(model):
        targets = maximize_targets(model, options.get("class"), options.get("channel"))
    objective = options.get("objective") or ("logit" if targets[0].kind == "class" else "mean")
    allowed = ("logit", "prob") if targets[0].kind == "class" else ("mean",)
    if objective not in allowed:
        raise ConvscopeError(
            f"objective {objective!r} does not apply to a {targets[0].kind}; "
            f"use {' or '.join(allowed)}"
        )
    settings = {name: options.get(name) for name in ("steps", "starts", "seed")}
    default_settings(model.input_spec, objective, **settings)


def _maximize(state: ServeState, spec: str, options: dict[str, Any], job: Job) -> dict[str, Any]:
    from convscope.probe.maximize import maximize

    model: LoadedModel = state.models.get(spec)
    settings = {name: options.get(name) for name in ("steps", "starts", "seed")}
    result = maximize(
        model,
        options.get("class"),
        channels=options.get("channel"),
        objective=options.get("objective"),
        progress=job.report,
        **settings,
    )
    state.pictures.put(job.id, figure_bytes(result.figure()))
    return result.to_dict() | {"image": f"api/jobs/{job.id}/image.png"}


@router.post("/api/models/{model:path}/maximize")
async def model_maximize(request: Request, model: str) -> dict[str, str]:
    """Start (or join) the maximisation ``{"class": K}`` or ``{"channel": "L:C"}``:
    ``{"job": ID}``; poll ``GET /api/jobs/{id}``."""
    state = state_of(request)
    raw = bytearray()
    async for chunk in request.stream():  # read no more than a request can need
        raw.extend(chunk)
        if len(raw) > MAXIMIZE_BODY_BYTES:
            raise ConvscopeError(
                f'the body is over {MAXIMIZE_BODY_BYTES:,} bytes; send e.g. {{"class": 3}}'
            )
    try:
        body = json.loads(bytes(raw) or b"null")
    except (ValueError, RecursionError):
        raise ConvscopeError('the body is not JSON; send e.g. {"class": 3}') from None
    options = maximize_options(body)
    key = await state.run(_maximize_key, state, model, options)
    running = state.jobs.running(key)
    if running is not None:  # the same work asked again: join it
        return {"job": running.id}
    await state.run(_check_maximize, state, model, options)
    job = state.jobs.submit(
        key, lambda job: _maximize(state, model, options, job), hold=state.tracing.shared
    )
    return {"job": job.id}


# --------------------------------------------------------------------------- jobs


def _job(state: ServeState, job_id: str) -> Job:
    from convscope.serve.errors import NotFoundError

    try:
        return state.jobs.get(job_id)
    except ConvscopeError as error:
        raise NotFoundError(str(error)) from None


@router.get("/api/jobs/{job_id}")
async def job_status(request: Request, job_id: str) -> dict[str, Any]:
    """``{"status", "progress", "result"}`` (and ``error`` when it failed)."""
    return _job(state_of(request), job_id).to_dict()


@router.delete("/api/jobs/{job_id}")
async def job_cancel(request: Request, job_id: str) -> dict[str, Any]:
    """Cancel a job: it stops at its next progress report."""
    job = _job(state_of(request), job_id)
    job.cancel()
    return job.to_dict()


@router.get("/api/jobs/{job_id}/image.png")
async def job_image(request: Request, job_id: str) -> Response:
    """The picture of a finished maximisation job."""
    state = state_of(request)
    job = _job(state, job_id)
    if job.status in ("queued", "running"):
        raise HTTPException(409, f"job {job_id} is {job.status}; ask again when it is done")
    picture = state.pictures.get(job_id)
    if picture is None:
        from convscope.serve.errors import NotFoundError

        raise NotFoundError(f"job {job_id} ({job.status}) has no picture")
    return png(picture)


# --------------------------------------------------------------------------- images


@router.post("/api/images")
async def upload_image(request: Request) -> dict[str, Any]:
    """An image file (multipart field ``file``, or the raw body) -> ``{"spec": "upload:ID"}``."""
    state = state_of(request)
    content_type = request.headers.get("content-type", "")
    multipart = content_type.lower().startswith("multipart/form-data")
    slack = 64 * 1024 if multipart else 0  # the form's boundaries and headers
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        images.check_upload_size(int(declared) - slack)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        images.check_upload_size(len(body) - slack)
    if multipart:  # parsing and hashing 10 MB happen off the event loop
        data = await state.run_io(images.multipart_file, bytes(body), content_type)
    else:
        data = bytes(body)
    images.check_upload_size(len(data))
    pixels = await state.run_io(images.decode_upload, data)
    upload_id = await state.run_io(images.upload_id, data)
    state.uploads.put(upload_id, pixels)
    return {"spec": f"upload:{upload_id}", "shape": list(pixels.shape)}


def _image_png(state: ServeState, image: str, spec: str | None) -> bytes:
    from convscope.data.images import fit_to_spec

    if spec is None:
        return images.png_of_pixels(picture_of(state, image, None).pixels)
    model = state.models.get(spec)
    picture = picture_of(state, image, model.input_spec)
    return images.png_of_pixels(fit_to_spec(picture.pixels, model.input_spec))


@router.get("/api/image.png")
async def image_png(request: Request, image: str, model: str | None = None) -> Response:
    """The image a SPEC names; with ``model``, as that model sees it (resized, its channels)."""
    state = state_of(request)
    return png(await state.run(_image_png, state, image, model))
