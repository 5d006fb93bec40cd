"""Activations of many images: chosen layers' outputs for every image, in batches.

:func:`activations` is what keract's ``get_activations`` and torchvision's
``create_feature_extractor`` give (the raw output of named layers, batch dimension
kept: ``N x C x H x W`` for conv layers, ``N x features`` for dense ones), for any model
convscope loads and for thousands of images: the images are read a batch at a time
(:mod:`convscope.data.stream`: a dataset range is sliced from its arrays, never made
into one Python object per image) and each batch's outputs are copied into the result
arrays, or streamed to ``.npy`` files (``out=``), so that 60,000 images of a large
layer never sit in memory at once.

Why hooks and not torchvision's feature extractor: the extractor needs a model that
``torch.fx`` can trace, and convscope loads models that are not (timm, a user's
module with data-dependent control flow). Hooks see every module call, so a reused
module (torchvision's ResNet calls one in-place ReLU three times per block) gives the
call asked for, and its output is copied inside the hook, before a later in-place op
can overwrite it. The first batch is captured with :func:`~convscope.probe.activations.capture`
(clones of every call) to learn how often each layer runs and its output's shape;
later batches copy only the chosen call, straight into the destination, and stop the
forward pass once every asked-for layer has given its output.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from convscope.data.spec import InputImage
from convscope.data.stream import ArrayStream, ImageStream, open_images
from convscope.errors import ConvscopeError, ImageError, LayerError
from convscope.models.loaded import LoadedModel, weights_of
from convscope.models.modes import evaluating
from convscope.probe.activations import _first_tensor, borrowed_hooks, capture, resolve_layers
from convscope.probe.base import TableResult
from convscope.probe.exclusive import one_at_a_time
from convscope.probe.features import model_parts, parse_layers, pick_call

DEFAULT_BATCH_SIZE = 256
"""Images per forward pass unless told otherwise."""

Progress = Callable[[str, int, int], None]
"""``progress(description, done_images, total_images)``."""

Images = str | Sequence[InputImage] | ImageStream | np.ndarray | torch.Tensor
"""A SPEC, loaded images, an image stream, uint8 pixels ``N x H x W [x C]`` or an NCHW tensor."""


@dataclass(frozen=True, eq=False)
class Activations(TableResult):
    """The outputs of chosen layers for many images: one array per layer, a row per image.

    Indexing by layer name gives the array (``result["hidden"]``, ``N x 128``), and
    ``dict(result)`` the plain dict of arrays. With ``out=`` the arrays are the written
    ``.npy`` files, memory-mapped read-only (:attr:`paths`).
    """

    model: str
    spec: str
    arrays: dict[str, np.ndarray]
    labels: np.ndarray
    specs: list[str]
    class_names: tuple[str, ...] | None = None
    types: dict[str, str] = field(default_factory=dict)
    calls: dict[str, tuple[int, int]] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    batch_size: int = DEFAULT_BATCH_SIZE
    seconds: float = 0.0
    model_weights: str = ""

    def __getitem__(self, layer: str) -> np.ndarray:
        if layer not in self.arrays:
            raise LayerError(f"no activations of layer {layer!r}; have {', '.join(self.arrays)}")
        return self.arrays[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def __contains__(self, layer: object) -> bool:
        return layer in self.arrays

    def keys(self) -> Any:
        return self.arrays.keys()

    def values(self) -> Any:
        return self.arrays.values()

    def items(self) -> Any:
        return self.arrays.items()

    @property
    def layers(self) -> list[str]:
        """The layer names, in the order asked for."""
        return list(self.arrays)

    @property
    def count(self) -> int:
        """How many images (rows)."""
        return len(self.specs)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Each layer's array shape, ``(N, C, H, W)`` or ``(N, features)``."""
        return {name: tuple(array.shape) for name, array in self.arrays.items()}

    @property
    def label_names(self) -> list[str | None]:
        """The class name of every row (None where the image has no label)."""
        names = self.class_names or ()
        return [names[i] if 0 <= i < len(names) else None for i in self.labels.tolist()]

    def to_dict(self) -> dict[str, Any]:
        """Shapes, labels and the SPEC of every row (not the arrays themselves)."""
        return {
            "model": self.model,
            "weights": self.model_weights,
            "spec": self.spec,
            "count": self.count,
            "batch_size": self.batch_size,
            "seconds": round(self.seconds, 3),
            "layers": [
                {
                    "name": name,
                    "type": self.types.get(name),
                    "shape": list(array.shape),
                    "dtype": str(array.dtype),
                    "bytes": int(array.nbytes),
                    "call": self.calls.get(name, (0, 1))[0],
                    "calls": self.calls.get(name, (0, 1))[1],
                    **({"path": str(self.paths[name])} if name in self.paths else {}),
                }
                for name, array in self.arrays.items()
            ],
            "class_names": None if self.class_names is None else list(self.class_names),
            "labels": self.labels.tolist(),
            "specs": list(self.specs),
        }

    def _repr_html_(self) -> str:
        from convscope.render.activations import activations_html

        return activations_html(self)

    def __rich__(self) -> Any:
        from convscope.render.activations import activations_table

        return activations_table(self)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {'x'.join(map(str, s))}" for n, s in self.shapes.items())
        return f"Activations(model={self.model!r}, spec={self.spec!r}, n={self.count}, {shapes})"


# --------------------------------------------------------------------------- destinations


class _Memory:
    """Rows kept in one in-memory array per layer."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def open(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.arrays[name] = np.empty(shape, dtype=dtype)

    def write(self, name: str, start: int, rows: np.ndarray) -> None:
        self.arrays[name][start : start + len(rows)] = rows

    def commit(self) -> tuple[dict[str, np.ndarray], dict[str, Path]]:
        return self.arrays, {}

    def abort(self) -> None:
        self.arrays.clear()


LABELS_FILE = "_labels.npy"
ROWS_FILE = "_rows.txt"
"""Beside the layers' ``.npy`` files: each row's label and SPEC."""


def npy_path(folder: str | os.PathLike[str], layer: str) -> Path:
    """``FOLDER/<layer>.npy`` (a ``/`` in a layer name becomes ``_``)."""
    return Path(folder) / f"{layer.replace('/', '_')}.npy"


class _Files:
    """Rows streamed into ``FOLDER/<layer>.npy``: hidden temporary files until commit.

    Each file is created with :func:`numpy.lib.format.open_memmap` (the ``.npy`` header
    and the full size, sparse), then rows are written at their offsets with ``pwrite``:
    a process that maps and fills a file keeps every page it touched in its resident
    memory, while written pages go to the page cache. On commit the files are synced and
    renamed to their final names; on any failure they are removed, so nothing is left
    half written.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, tuple[Path, Path, int, int, int]] = {}  # tmp, final, fd, offset, row
        self.extras: list[tuple[Path, Path]] = []  # small files committed with the arrays

    def index(self, labels: np.ndarray, specs: Sequence[str]) -> None:
        """``_labels.npy`` (int64, -1 unknown) and ``_rows.txt`` (a SPEC per row) beside the
        arrays: which image each row is, for a folder of photos as for a dataset range."""
        text = "".join(f"{spec}\n" for spec in specs).encode()
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(labels, dtype=np.int64))
        for name, data in ((LABELS_FILE, buffer.getvalue()), (ROWS_FILE, text)):
            final = self.folder / name
            try:
                fd, tmp_name = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.", suffix=".part")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise ConvscopeError(f"cannot write {final}: {exc.strerror or exc}") from exc
            self.extras.append((Path(tmp_name), final))

    def open(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        from numpy.lib.format import open_memmap

        final = npy_path(self.folder, name)
        try:
            fd, tmp_name = tempfile.mkstemp(
                dir=self.folder, prefix=f".{final.name}.", suffix=".part"
            )
            os.close(fd)
            tmp = Path(tmp_name)
            self.files[name] = (tmp, final, -1, 0, 0)
            mapped = open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            offset = int(mapped.offset)
            del mapped
            fd = os.open(tmp, os.O_WRONLY)
        except OSError as exc:
            raise ConvscopeError(f"cannot write {final}: {exc.strerror or exc}") from exc
        row = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dtype).itemsize
        self.files[name] = (tmp, final, fd, offset, row)

    def write(self, name: str, start: int, rows: np.ndarray) -> None:
        _, final, fd, offset, row = self.files[name]
        view = memoryview(np.ascontiguousarray(rows)).cast("B")
        position = offset + start * row
        try:
            while view.nbytes:
                written = os.pwrite(fd, view, position)
                view, position = view[written:], position + written
        except OSError as exc:
            raise ConvscopeError(f"cannot write {final}: {exc.strerror or exc}") from exc

    def commit(self) -> tuple[dict[str, np.ndarray], dict[str, Path]]:
        for name, (tmp, final, fd, _, _) in self.files.items():
            try:
                os.fsync(fd)
                os.close(fd)
            except OSError as exc:
                raise ConvscopeError(f"cannot write {final}: {exc.strerror or exc}") from exc
            self.files[name] = (tmp, final, -1, 0, 0)
        paths: dict[str, Path] = {}
        for name, (tmp, final, _, _, _) in self.files.items():
            try:
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
            except OSError as exc:
                raise ConvscopeError(f"cannot write {final}: {exc.strerror or exc}") from exc
            paths[name] = final
        self.files.clear()
        for tmp, final in self.extras:
            try:
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
            except OSError as exc:
                raise ConvscopeError(f"cannot write {final}: {exc.strerror or exc}") from exc
        self.extras.clear()
        return {name: np.load(path, mmap_mode="r") for name, path in paths.items()}, paths

    def abort(self) -> None:
        for tmp, _, fd, _, _ in self.files.values():
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.files.clear()
        for tmp, _ in self.extras:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.extras.clear()


def prepare_folder(out: str | os.PathLike[str], layers: Sequence[str], option: str = "out") -> Path:
    """Check that ``out`` is (or can be made) a folder where every ``<layer>.npy`` can be written.

    Nothing is created; errors are one line naming ``option``.
    """
    from convscope.files import check_folder, unwritable_reason

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConvscopeError(f"{option} needs a folder, but {folder} is a file")
    check_folder(folder)
    if folder.is_dir():
        for layer in layers:
            reason = unwritable_reason(npy_path(folder, layer))
            if reason:
                raise ConvscopeError(reason)
    return folder


# --------------------------------------------------------------------------- the pass


class _StopForward(Exception):
    """Raised inside a hook once every asked-for layer has given its output for the batch."""


class _Source:
    """Batches of model input with the rows' names and labels."""

    def __init__(self, images: Images, loaded: LoadedModel | None) -> None:
        self.tensor: torch.Tensor | None = None
        self.stream: ImageStream | None = None
        if isinstance(images, torch.Tensor):
            tensor = images.detach()
            tensor = tensor.unsqueeze(0) if tensor.ndim == 3 else tensor
            if tensor.ndim != 4 or len(tensor) == 0:
                raise ImageError(
                    "expected preprocessed inputs of shape N x C x H x W (or C x H x W), "
                    f"got {tuple(images.shape)}"
                )
            self.tensor = tensor
            self.spec = f"input tensor ({len(tensor)} images)"
            self.class_names = None if loaded is None else loaded.class_names
            return
        if loaded is None:
            raise ImageError(
                "a bare nn.Module takes a preprocessed N x C x H x W tensor; "
                "load the model (convscope.load_model) for images and SPECs"
            )
        if isinstance(images, np.ndarray):
            images = ArrayStream(images)
        self.stream = open_images(images, input_spec=loaded.input_spec)  # type: ignore[arg-type]
        self.loaded = loaded
        self.spec = self.stream.spec
        self.class_names = self.stream.class_names or loaded.class_names

    def __len__(self) -> int:
        return len(self.tensor) if self.tensor is not None else len(self.stream)  # type: ignore[arg-type]

    def batch(self, start: int, stop: int) -> torch.Tensor:
        if self.tensor is not None:
            return self.tensor[start:stop].float()
        return self.stream.batch(start, stop, self.loaded.input_spec)  # type: ignore[union-attr]

    def names(self) -> list[str]:
        if self.tensor is not None:
            return [f"input[{i}]" for i in range(len(self.tensor))]
        return self.stream.names()  # type: ignore[union-attr]

    def labels(self) -> np.ndarray:
        if self.tensor is not None:
            return np.full(len(self.tensor), -1, dtype=np.int64)
        return np.array(self.stream.labels, dtype=np.int64)  # type: ignore[union-attr]


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A captured output as numpy on the CPU (float32 for floating types), without a copy if it can."""
    tensor = tensor.detach()
    if tensor.is_floating_point() and tensor.dtype != torch.float32:
        tensor = tensor.float()
    return tensor.cpu().numpy()


class _DirectHooks:
    """Hooks that hand call ``chosen[name]`` of each layer to ``sink`` as it happens.

    ``counts`` holds each layer's calls in the current batch (:meth:`reset` before each);
    once every layer has handed over its call, the hook raises :class:`_StopForward`.
    Use as a context manager: the hooks are removed on exit, also on error.
    """

    def __init__(
        self,
        targets: dict[str, nn.Module],
        chosen: dict[str, int],
        sink: Callable[[str, torch.Tensor], None],
    ) -> None:
        self.targets, self.chosen, self.sink = targets, chosen, sink
        self.counts = dict.fromkeys(targets, 0)
        self.pending = len(targets)

    def reset(self) -> None:
        for name in self.counts:
            self.counts[name] = 0
        self.pending = len(self.targets)

    def _hook_for(self, name: str) -> Callable[..., None]:
        wanted = self.chosen[name]

        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            call = self.counts[name]
            self.counts[name] = call + 1
            if call != wanted:
                return
            tensor = _first_tensor(output)
            if tensor is not None:
                self.sink(name, tensor)
            self.pending -= 1
            if self.pending == 0:
                raise _StopForward

        return hook

    def __enter__(self) -> _DirectHooks:
        self._borrowed = borrowed_hooks(
            [(layer, self._hook_for(name)) for name, layer in self.targets.items()]
        )
        self._borrowed.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._borrowed.__exit__(*exc)


@one_at_a_time
def activations(
    model: LoadedModel | nn.Module,
    images: Images,
    layers: Sequence[str] | str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    out: str | os.PathLike[str] | None = None,
    call: int = -1,
    progress: Progress | None = None,
) -> Activations:
    """The outputs of ``layers`` for every image of ``images``, computed in batches.

    ``images``: a SPEC (``"fashion-mnist:test:0-10000"``, a folder, a file: no cap on
    how many), a list of :class:`~convscope.data.spec.InputImage`, uint8 pixels
    ``N x H x W [x C]`` or an already preprocessed ``N x C x H x W`` tensor (the only
    input a bare ``nn.Module`` takes). ``layers``: names or one comma-separated string
    (see ``convscope layers MODEL``). A module that runs several times in one pass gives
    call ``call`` (default: the last).

    Without ``out`` the arrays are in memory; with ``out=FOLDER`` each layer is streamed
    into ``FOLDER/<layer>.npy`` (written under a temporary name, renamed when all
    succeeded, removed on failure) and the result holds them memory-mapped.
    ``progress(description, done, total)`` is called after each batch.
    """
    module, name, loaded = model_parts(model)
    names = parse_layers(layers)
    targets = resolve_layers(module, names)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConvscopeError(
            f"the batch size must be a whole number of at least 1, got {batch_size}"
        )
    folder = None if out is None else prepare_folder(out, names, "out=")
    source = _Source(images, loaded)
    total = len(source)
    if total == 0:
        raise ImageError(f"{source.spec} names no images")
    started = time.perf_counter()
    sink: _Memory | _Files
    made_folder = False
    if folder is not None:
        from convscope.files import ensure_folder

        made_folder = not folder.exists()
        ensure_folder(folder)
        sink = _Files(folder)
    else:
        sink = _Memory()
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    try:
        with evaluating(module, grad=True), torch.inference_mode():
            calls = _run(module, source, names, targets, sink, batch_size, call, device, progress)
        if isinstance(sink, _Files):
            sink.index(source.labels(), source.names())
        arrays, paths = sink.commit()
    except BaseException:
        sink.abort()
        if made_folder and folder is not None:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise
    return Activations(
        model=name,
        model_weights=weights_of(model),
        spec=source.spec,
        arrays=arrays,
        labels=source.labels(),
        specs=source.names(),
        class_names=None if source.class_names is None else tuple(source.class_names),
        types={n: type(targets[n]).__name__ for n in names},
        calls=calls,
        paths=paths,
        batch_size=batch_size,
        seconds=time.perf_counter() - started,
    )


def _run(
    module: nn.Module,
    source: _Source,
    names: list[str],
    targets: dict[str, nn.Module],
    sink: _Memory | _Files,
    batch_size: int,
    call: int,
    device: torch.device,
    progress: Progress | None,
) -> dict[str, tuple[int, int]]:
    """Forward every batch, handing each layer's chosen call to ``sink``; returns the calls."""
    total = len(source)
    stop = min(batch_size, total)
    with capture(module, names) as captured:
        module(source.batch(0, stop).to(device))
    chosen: dict[str, int] = {}
    calls: dict[str, tuple[int, int]] = {}
    for layer in names:
        outputs = captured.calls[layer]
        index = pick_call(len(outputs), call, layer)
        first = _numpy(outputs[index])
        if first.ndim == 0 or first.shape[0] != stop:
            raise LayerError(
                f"layer {layer!r} gave an output of shape {tuple(first.shape)} for a batch of "
                f"{stop} images; only layers that keep the batch dimension can be streamed"
            )
        chosen[layer], calls[layer] = index, (index, len(outputs))
        sink.open(layer, (total, *first.shape[1:]), first.dtype)
        sink.write(layer, 0, first)
    del captured
    if progress is not None:
        progress("activations", stop, total)
    start = stop
    current = {"start": start, "rows": 0}

    def take(layer: str, tensor: torch.Tensor) -> None:
        rows = _numpy(tensor)
        if rows.shape[0] != current["rows"]:
            raise LayerError(
                f"layer {layer!r} gave {rows.shape[0]} rows for a batch of {current['rows']} "
                "images; only layers that keep the batch dimension can be streamed"
            )
        sink.write(layer, current["start"], rows)

    with _DirectHooks(targets, chosen, take) as hooks:
        counts = hooks.counts
        while start < total:
            stop = min(start + batch_size, total)
            current["start"], current["rows"] = start, stop - start
            hooks.reset()
            try:
                module(source.batch(start, stop).to(device))
            except _StopForward:
                pass
            else:
                missing = [n for n in names if counts[n] <= chosen[n]]
                if missing:
                    raise LayerError(
                        f"layer {missing[0]!r} ran {counts[missing[0]]} time(s) for images "
                        f"{start}-{stop} but {calls[missing[0]][1]} for the first batch"
                    )
            if progress is not None:
                progress("activations", stop, total)
            start = stop
    return calls
