"""The model explorer's examples routes: the images that activate a channel most, and least.

Thin over :func:`convscope.probe.examples.top_activations`, as ``convscope examples``:
the JSON is the result's ``to_dict()`` (what ``--json`` prints), the PNG its figure.
A request names its images as the other routes do (a dataset range, a sample, an
upload; never a file), or none: then the model's run's probe set, or a stratified
sample of its dataset (:func:`~convscope.probe.examples.example_images`). A dataset
not on this machine is a 409 naming ``convscope data fetch``, never a download.

Small work is answered at once. The default set, a set of more than
:data:`SYNC_IMAGES` images or a model of more than :data:`SYNC_PARAMS` parameters is
computed as a job (``202 {"job": ID}``, progress per batch); the same request asked
again once it is done is answered from the server's result cache. A result keeps
every channel's values (unless that would be more than :data:`ALL_CHANNELS_VALUES`
numbers), so another channel of the same layer and images is answered without a run.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from convscope.errors import ConvscopeError
from convscope.probe.examples import (
    DEFAULT_K,
    ExampleSet,
    TopActivations,
    check_channel,
    example_images,
    layer_units,
    top_activations,
)
from convscope.serve import images
from convscope.serve.cache import ResultCache
from convscope.serve.jobs import Job
from convscope.serve.state import ServeState, state_of

router = APIRouter()

MAX_TOP = 64
"""The most images a request may ask for at each end."""

SYNC_IMAGES = 64
SYNC_PARAMS = 5_000_000
"""Sets of at most this many images, on models of at most this many parameters, are
answered at once; anything larger is a job."""

ALL_CHANNELS_VALUES = 16 * 1024**2
"""A result keeps every channel's values when that is at most this many numbers (64 MB)."""


@dataclass(frozen=True)
class Ask:
    """One request's parameters, checked."""

    model: str
    layer: str
    channel: int
    image: str | None
    top: int
    call: int


def asked(model: str, layer: str, channel: int, image: str | None, top: int, call: int) -> Ask:
    """The parameters of a request; a bad ``top`` or ``image`` is a one-line error (400)."""
    if not 1 <= top <= MAX_TOP:
        raise ConvscopeError(f"top must be a whole number from 1 to {MAX_TOP}, got {top}")
    if image is not None:
        image = images.check_image_spec(image)  # never a file
    return Ask(model, layer, channel, image, top, call)


class ExampleCache:
    """Results by (model, weights, layer, call, images), kept in the server's result cache
    (so ``--cache-mb`` bounds them too), each computed once however many requests ask for
    it at the same time. A result of every channel answers any channel."""

    def __init__(self, results: ResultCache) -> None:
        self.results = results
        self._lock = threading.Lock()
        self._computing: dict[tuple[Any, ...], threading.Lock] = {}

    def find(self, key: tuple[Any, ...], channel: int) -> TopActivations | None:
        """The cached result that answers ``channel``: every channel's, or that one's."""
        return self.results.get(("examples", *key)) or self.results.get(("examples", *key, channel))

    def compute(
        self, key: tuple[Any, ...], channel: int, work: Callable[[], TopActivations]
    ) -> TopActivations:
        """The cached result, or ``work()`` kept: computed once for concurrent asks."""
        with self._lock:
            computing = self._computing.setdefault(key, threading.Lock())
        try:
            with computing:
                found = self.find(key, channel)
                if found is None:
                    found = work()
                    whole = len(found.channels) == found.units
                    kept = ("examples", *key) if whole else ("examples", *key, found.channel)
                    self.results.put(kept, found, result_bytes(found))
                return found
        finally:
            with self._lock:
                self._computing.pop(key, None)


def result_bytes(result: TopActivations) -> int:
    """Memory a cached result holds: its values and the pixels it keeps to draw."""
    return int(result.values.nbytes) + int(getattr(result.source, "nbytes", 0))


def cache_of(request: Request) -> ExampleCache:
    """This app's cache of examples (made on first use; the event loop's thread only)."""
    app_state = request.app.state
    cache = getattr(app_state, "examples_cache", None)
    if cache is None:
        cache = app_state.examples_cache = ExampleCache(state_of(request).cache)
    return cache


@dataclass
class Plan:
    """What a request needs: its cache key, a result at hand, or the work of a job."""

    key: tuple[Any, ...]
    result: TopActivations | None = None
    work: Callable[[Job], dict[str, Any]] | None = None


def request_images(spec: str, state: ServeState, input_spec: Any) -> ExampleSet:
    """The images an allowed SPEC names, copied out of their dataset (a range of any
    length, a sample photo or an upload)."""
    from convscope.data.spec import parse_dataset_spec
    from convscope.data.stream import DatasetStream, ListStream

    if spec.startswith(("sample:", "upload:")):
        return ExampleSet.of(
            ListStream(images.resolve_images(spec, state.uploads, input_spec), spec)
        )
    dataset, split, start, stop = parse_dataset_spec(spec, limit=None)
    images.require_local(dataset, split)  # a request never starts a download (409)
    return ExampleSet.of(DatasetStream(dataset, split, start, stop, input_spec.channels))


def default_images(state: ServeState, model: Any) -> ExampleSet:
    """The default set of ``model`` (see :func:`example_images`), if its dataset is on
    this machine: a request never starts a download (409 with the fetch command)."""
    from convscope.errors import DataError
    from convscope.probe.examples import run_of

    run = run_of(model)
    if run is not None:
        from convscope.train.run import run_settings

        with state.store() as store:
            settings = run_settings(store.run(run))
        for split in ("train", settings.validation):
            if split:
                images.require_local(settings.data, split)
    elif model.dataset:
        with contextlib.suppress(DataError):  # one convscope cannot read: said below
            images.require_local(model.dataset, "test")
    return example_images(model, state.config.store)


def plan(state: ServeState, cache: ExampleCache, ask: Ask) -> Plan:
    """Check everything a request asks (4xx now, not a failed job), then answer from the
    cache, compute a small set at once, or say what a job is to do."""
    model = state.models.get(ask.model)
    pool_key = state.models.key(state.models.resolve(ask.model))
    units, _, vector = layer_units(model, ask.layer, call=ask.call)  # unknown layer: close names
    check_channel(ask.channel, units, ask.layer, vector)
    key = (pool_key, model.weights, ask.layer, ask.call, ask.image or "")
    found = cache.find(key, ask.channel)
    if found is not None:
        return Plan(key, result=found.select(ask.channel, ask.top))
    if ask.image is None:
        chosen = default_images(state, model)
    else:
        chosen = request_images(ask.image, state, model.input_spec)
    params = sum(p.numel() for p in model.module.parameters())

    def compute(progress: Any = None) -> TopActivations:
        every = len(chosen) * units <= ALL_CHANNELS_VALUES
        return top_activations(
            model,
            ask.layer,
            chosen,
            ask.top,
            channel=None if every else ask.channel,
            call=ask.call,
            progress=progress,
        )

    if ask.image is not None and len(chosen) <= SYNC_IMAGES and params <= SYNC_PARAMS:
        result = cache.compute(key, ask.channel, compute)
        return Plan(key, result=result.select(ask.channel, ask.top))

    def work(job: Job) -> dict[str, Any]:
        def progress(_what: str, done: int, total: int) -> None:
            job.report(done, total, f"ranked {done} of {total} images")

        result = cache.compute(key, ask.channel, lambda: compute(progress))
        return result.select(ask.channel, ask.top).to_dict()

    return Plan(key, work=work)


async def answer(request: Request, ask: Ask) -> TopActivations | JSONResponse:
    """The result, or ``202 {"job": ID}`` while a job computes it."""
    state = state_of(request)
    cache = cache_of(request)
    planned = await state.run(plan, state, cache, ask)
    if planned.result is not None:
        return planned.result
    assert planned.work is not None
    key = "examples " + json.dumps([*planned.key, ask.channel, ask.top], default=str)
    job = state.jobs.submit(key, planned.work, hold=state.tracing.shared)
    return JSONResponse({"job": job.id}, status_code=202)


@router.get("/api/models/{model:path}/examples")
async def model_examples(
    request: Request,
    model: str,
    layer: str,
    channel: int,
    image: str | None = None,
    top: int = DEFAULT_K,
    call: int = -1,
) -> Any:
    """As ``convscope examples MODEL --layer L --channel C [--image SPEC] --top K --json``;
    ``202 {"job"}`` while a large set or the default one is computed."""
    result = await answer(request, asked(model, layer, channel, image, top, call))
    return result if isinstance(result, JSONResponse) else result.to_dict()


@router.get("/api/models/{model:path}/examples.png")
async def model_examples_png(
    request: Request,
    model: str,
    layer: str,
    channel: int,
    image: str | None = None,
    top: int = DEFAULT_K,
    call: int = -1,
) -> Response:
    """The figure of ``convscope examples ... --out F.png``; ``202 {"job"}`` as the JSON."""
    from convscope.render.figures import figure_png

    result = await answer(request, asked(model, layer, channel, image, top, call))
    if isinstance(result, JSONResponse):
        return result
    state = state_of(request)
    png = await state.run(lambda: figure_png(result.figure()))
    return Response(png, media_type="image/png")
