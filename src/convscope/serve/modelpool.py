"""The models the dashboard serves: which MODEL strings a request may name, and a pool.

A request names a zoo name, ``run:ID`` / ``run:ID@EPOCH`` of the server's store, a
``torchvision:`` / ``timm:`` architecture (built with no download) or a name given with
``--model`` at start: those are the only files the server ever reads, so a MODEL that
looks like a path is refused. Loaded models stay in a pool bounded by count and by the
bytes of their parameters (least recently used first out); ``run:ID`` is keyed by its
latest epoch, so a run that trains on is reloaded when a new checkpoint lands, and a
``--model`` file is reloaded when it changes on disk (its modification time or size:
:meth:`ModelPool.entry` gives that identity to the result cache too).

A model with a large input (ImageNet-size) is kept with its 4-D weights in the
``channels_last`` memory format (:func:`fast_layout`): oneDNN's convolutions then skip a
layout change per layer (``resnet50`` at 224x224 on 2 cores: about 30 % faster) and
compute the same numbers (the tests compare the maps with a freshly loaded model's).
The pool loads its models itself, so no caller's model is changed.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path, PureWindowsPath
from typing import Any

from convscope.errors import ConvscopeError
from convscope.models.loaded import LoadedModel
from convscope.models.registry import zoo_records
from convscope.naming import close_matches
from convscope.serve.errors import NotFoundError

MAX_MODELS = 8
MAX_MB = 2048
MAX_BYTES = MAX_MB * 1024**2
"""Default bounds of the pool: models kept, and the bytes of their parameters and buffers
(``convscope serve --max-models`` and ``--models-mb``)."""

FILE_REFUSED = (
    "a request never names a file: use a zoo name, run:ID[@EPOCH] or a model given with --model"
)
FILE_SUFFIXES = (".ckpt", ".pt", ".pth", ".keras", ".h5", ".hdf5", ".py")
SERVED_FORMS = (
    "the dashboard serves a zoo name (GET /api/models), run:ID[@EPOCH] of its store, "
    "torchvision:NAME, timm:NAME or a model given with --model"
)


def looks_like_path(text: str) -> bool:
    """Whether a MODEL string could name a file (a request must never do that)."""
    lowered = text.lower()
    return (
        any(mark in text for mark in ("/", "\\", ".."))
        or text.startswith((".", "~"))
        or lowered.endswith(FILE_SUFFIXES)
        or ".py:" in lowered
    )


def split_weights(spec: str) -> tuple[str, str | None]:
    """A ``--model`` string's model and the weights to load into it: ``resnet50=imagenet``
    is ``("resnet50", "imagenet")`` (``--weights`` of the other commands), ``lenet5=w.pth``
    a file's weights. A string that is an existing path is a file, never split."""
    if "=" not in spec or os.path.exists(spec):
        return spec, None
    model, _, weights = spec.partition("=")
    if not model or not weights:
        raise ConvscopeError(
            f"--model {spec!r}: give MODEL or MODEL=WEIGHTS, e.g. resnet50=imagenet"
        )
    return model, weights


def _short_name(text: str) -> str:
    """A name as a request may use it: a path by its file name (no encoded slash)."""
    return text if not any(mark in text for mark in "/\\") else PureWindowsPath(text).name


def served_names(given: Iterable[str]) -> dict[str, str]:
    """The name a request uses for each ``--model``, to what was given.

    A name without a slash is used as given; a path by its file name (a request's path
    may hold no encoded slash), numbered when two share one or it is a zoo name.
    ``MODEL=WEIGHTS`` is served as ``MODEL=WEIGHTS`` with each part so shortened.
    """
    from convscope.models.registry import zoo

    names: dict[str, str] = {}
    for spec in given:
        model, weights = split_weights(spec)
        name = _short_name(model) + (f"={_short_name(weights)}" if weights else "")
        base, number = name, 2
        while name in names or (name in zoo() and name != spec):
            name, number = f"{base} ({number})", number + 1
        names[name] = spec
    return names


def check_model_name(spec: str, given: Mapping[str, str]) -> str:
    """The MODEL to load for ``spec`` if a request may name it (``given``: the served
    names of the ``--model`` models); otherwise the one-line reason (400 or 404)."""
    from convscope.models.registry import zoo

    if spec in given:
        return given[spec]
    if spec in given.values():
        return spec
    if looks_like_path(spec):
        raise ConvscopeError(FILE_REFUSED)
    if spec in zoo() or spec.startswith(("run:", "torchvision:", "timm:")):
        return spec
    names = [*zoo(), *given]
    raise NotFoundError(f"unknown model {spec!r}{close_matches(spec, names)}; {SERVED_FORMS}")


def file_stamp(spec: str) -> str:
    """``"MTIME_NS:SIZE"`` of the file a ``--model`` string names (a checkpoint, a Keras
    file, the ``.py`` of ``path/file.py:factory``); ``""`` when it names no file."""
    candidates = [spec]
    if ":" in spec:
        candidates.append(spec.rpartition(":")[0])
    for candidate in candidates:
        try:
            status = os.stat(candidate)
        except (OSError, ValueError):
            continue
        return f"{status.st_mtime_ns}:{status.st_size}"
    return ""


CHANNELS_LAST_PIXELS = 96 * 96
"""Inputs of at least this many pixels get :func:`fast_layout` (small ones gain nothing)."""


def fast_layout(model: LoadedModel) -> None:
    """Put a large-input model's 4-D weights in ``channels_last`` (in place)."""
    import torch

    if model.input_spec.height * model.input_spec.width < CHANNELS_LAST_PIXELS:
        return
    if any(p.dim() == 4 for p in model.module.parameters()):
        model.module.to(memory_format=torch.channels_last)


def model_bytes(model: LoadedModel) -> int:
    """Approximate memory of a model: the bytes of its parameters and buffers."""
    tensors = [*model.module.parameters(), *model.module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class ModelPool:
    """Loaded models by MODEL string, least recently used evicted first; thread-safe.

    Two requests for a model not yet loaded load it once (the second waits for the
    first). A ``--model`` file that changed on disk since it was loaded is loaded
    again. Probes hold the model's own lock (:mod:`convscope.probe.exclusive`), so one
    pooled model may serve several requests at once.
    """

    def __init__(
        self,
        store: Path,
        given: Iterable[str] = (),
        *,
        max_models: int = MAX_MODELS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.store = Path(store)
        self.given = served_names(given)
        """Served name -> the ``--model`` string it stands for."""
        self.max_models = max_models
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        if max_models < 1 or max_bytes < 1:
            raise ValueError("the pool must be able to hold a model")
        self._models: OrderedDict[str, tuple[LoadedModel, int, str]] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._catalog: list[dict[str, Any]] | None = None
        self._catalog_lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._models

    @property
    def nbytes(self) -> int:
        """Bytes of the pooled models' parameters and buffers."""
        with self._lock:
            return sum(size for _, size, _ in self._models.values())

    def get(self, spec: str) -> LoadedModel:
        """The model ``spec`` names, loaded once and kept (blocking: call it in a worker)."""
        return self.entry(spec)[1]

    def entry(self, spec: str) -> tuple[str, LoadedModel]:
        """``(identity, model)`` of ``spec``: its pool key (plus ``#`` and the file's stamp
        for a ``--model`` file) and the model, loaded once and kept (blocking)."""
        key = self.key(self.resolve(spec))
        stamp = self.stamp(key)
        identity = f"{key}#{stamp}" if stamp else key
        model = self._pooled(key, stamp)
        if model is not None:
            return identity, model
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            model = self._pooled(key, stamp)
            if model is not None:
                return identity, model
            try:
                model = self._load(key)
                self._keep(key, model, stamp)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
        return identity, model

    def stamp(self, key: str) -> str:
        """The on-disk stamp of a ``--model`` file key (``""`` for any other model)."""
        if key not in self.given.values():
            return ""
        model, weights = split_weights(key)
        return f"{file_stamp(model)}|{file_stamp(weights or '')}"

    def _pooled(self, key: str, stamp: str) -> LoadedModel | None:
        """The pooled model of ``key`` (now the most recently used), unless its file
        changed since it was loaded (then it is dropped)."""
        with self._lock:
            entry = self._models.get(key)
            if entry is None:
                return None
            if entry[2] != stamp:
                del self._models[key]
                return None
            self._models.move_to_end(key)
            return entry[0]

    def resolve(self, spec: str) -> str:
        """The MODEL string a request's ``spec`` stands for; refused ones raise."""
        return check_model_name(spec, self.given)

    def key(self, spec: str) -> str:
        """The pool key of a resolved ``spec``: ``run:`` refs become ``run:FULLID@EPOCH``."""
        if not spec.startswith("run:") or spec in self.given.values():
            return spec
        from convscope.store import open_store

        ref, at, epoch = spec.removeprefix("run:").partition("@")
        if not ref:
            raise ConvscopeError(f"{spec}: give a run after run:, e.g. run:ID (see /api/runs)")
        with open_store(self.store, create=False) as store:
            run = store.run(ref)
            if at:
                return f"run:{run.id}@{epoch}"
            checkpoints = store.checkpoints(run.id)
        return f"run:{run.id}@{max(checkpoints)}" if checkpoints else f"run:{run.id}"

    def catalog(self) -> list[dict[str, Any]]:
        """``convscope models --json`` records of the zoo, then the ``--model`` names.

        Building every zoo model takes seconds, so the list is made once and kept.
        """
        with self._catalog_lock:
            if self._catalog is None:
                given = [self._given_record(name) for name in self.given]
                self._catalog = [*zoo_records(), *given]
            return self._catalog

    def _given_record(self, name: str) -> dict[str, Any]:
        from convscope.probe.summary import count_params

        try:
            model = self.get(name)
        except ConvscopeError as error:
            return {"name": name, "params": None, "input_shape": None,
                    "description": f"given with --model: {self.given[name]}",
                    "error": str(error)}  # fmt: skip
        return {
            "name": name,
            "params": count_params(model.module)[0],
            "input_shape": list(model.input_spec.shape),
            "dataset": model.dataset,
            "description": f"given with --model: {self.given[name]} ({model.weights})",
        }

    def _load(self, key: str) -> LoadedModel:
        from convscope.models.loading import load_model

        spec, weights = split_weights(key) if key in self.given.values() else (key, None)
        model = load_model(spec, weights=weights, store=self.store)
        fast_layout(model)
        return model

    def _keep(self, key: str, model: LoadedModel, stamp: str = "") -> None:
        with self._lock:
            self._models[key] = (model, model_bytes(model), stamp)
            total = sum(size for _, size, _ in self._models.values())
            while len(self._models) > 1 and (
                len(self._models) > self.max_models or total > self.max_bytes
            ):
                _, (_, size, _) = self._models.popitem(last=False)
                total -= size
