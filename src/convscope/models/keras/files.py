"""Read Keras model files without TensorFlow: the model config and each layer's weights.

Two formats: Keras 3 ``.keras`` (a zip of ``config.json`` and ``model.weights.h5``,
whose weight groups are named by layer class and position, ``layers/conv2d_1/vars``,
with the layer's name as an attribute in recent versions) and legacy HDF5 ``.h5``
(``model_config`` attribute plus ``model_weights/<layer>`` groups listing their
``weight_names``: ``conv1/kernel:0`` in Keras 2, ``conv1/kernel`` or
``model/conv1/kernel`` in Keras 3). The file's content decides the format, not its
suffix. Every failure is one :class:`ModelError` line.
"""

from __future__ import annotations

import io
import json
import mmap
import re
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convscope.errors import ModelError

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
RESAVE = "save the whole model again with model.save('model.keras')"


@dataclass
class KerasFile:
    """What a Keras model file holds: the model config and the weights by layer name.

    ``weights[layer]`` lists the layer's arrays in Keras' order (``kernel``, ``bias``;
    ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``; ...).
    """

    path: Path
    format: str  # "keras" or "h5"
    model_config: dict[str, Any]
    weights: dict[str, list[np.ndarray]] = field(default_factory=dict)
    keras_version: str | None = None


def read_keras_file(path: str | Path) -> KerasFile:
    """Read a ``.keras`` or ``.h5`` Keras model file; a :class:`ModelError` if it cannot be."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head:
        raise ModelError(f"{path}: the file is empty; {RESAVE}")
    if head.startswith(ZIP_MAGIC):
        return _read_keras_zip(path)
    if head == HDF5_MAGIC or path.suffix.lower() in (".h5", ".hdf5"):
        return _read_h5(path)
    raise ModelError(
        f"{path}: not a Keras model file (neither a .keras zip archive nor HDF5); {RESAVE}"
    )


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ModelError(
            "reading Keras model files needs h5py; install it with `pip install 'convscope[keras]'`"
        ) from exc
    return h5py


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


DAMAGE = (OSError, EOFError, KeyError, ValueError, RuntimeError, TypeError, zlib.error)
"""What reading a truncated or corrupt file raises (zip, JSON, HDF5 alike)."""


# --------------------------------------------------------------------------- .keras


def _read_keras_zip(path: Path) -> KerasFile:
    h5py = _h5py()
    try:
        with zipfile.ZipFile(path) as archive:
            members = _checked_members(archive, path)
            for member in ("config.json", "model.weights.h5"):
                if member not in members:
                    raise ModelError(f"{path}: the .keras archive has no {member}; {RESAVE}")
            config = json.loads(_bounded_read(archive, members["config.json"], path))
            metadata = (
                json.loads(_bounded_read(archive, members["metadata.json"], path))
                if "metadata.json" in members
                else {}
            )
            data = _bounded_read(archive, members["model.weights.h5"], path)
        if not isinstance(config, dict):
            raise ModelError(f"{path}: config.json does not hold a model config; {RESAVE}")
        check_global_heaps(data, path)
        with h5py.File(io.BytesIO(data), "r") as weights_file:
            weights = _keras_weights(weights_file, config, path)
    except ModelError:
        raise
    except (zipfile.BadZipFile, *DAMAGE) as exc:
        raise ModelError(
            f"{path}: a damaged or truncated .keras file ({_reason(exc)}); {RESAVE}"
        ) from exc
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    return KerasFile(path, "keras", config, weights, version)


MB = 1 << 20
MEMBER_LIMITS = {"config.json": 64 * MB, "metadata.json": 64 * MB, "model.weights.h5": 4 << 30}
"""The most a ``.keras`` member may inflate to; past it the archive is refused unread."""
MAX_RATIO = 1000
"""The most a member over :data:`RATIO_FLOOR` may inflate per compressed byte."""
RATIO_FLOOR = MB
CHUNK = MB


def _checked_members(archive: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, once every name stays inside and no size is a bomb.

    Checked on the declared sizes before anything is inflated; :func:`_bounded_read`
    checks the real ones, since a declared size can lie.
    """
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", name):
            raise ModelError(
                f"{path}: refused: the .keras archive has a member named {name[:80]!r}, "
                "which points outside it; nothing was unpacked"
            )
        _check_size(info, info.file_size, path)
        members[name] = info
    return members


def _check_size(info: zipfile.ZipInfo, size: int, path: Path) -> None:
    limit = MEMBER_LIMITS.get(info.filename)
    if limit is not None and size > limit:
        raise ModelError(
            f"{path}: refused: the .keras member {info.filename} inflates past "
            f"{_size(limit)} (a zip bomb, not a model file); nothing was unpacked"
        )
    if size > RATIO_FLOOR and size > MAX_RATIO * max(info.compress_size, 1):
        raise ModelError(
            f"{path}: refused: the .keras member {info.filename[:80]!r} inflates "
            f"{size // max(info.compress_size, 1)}-fold, more than {MAX_RATIO}-fold "
            "(a zip bomb, not a model file); nothing was unpacked"
        )


def _bounded_read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """A member's bytes, read in chunks and stopped as soon as they pass the limits."""
    chunks: list[bytes] = []
    total = 0
    with archive.open(info) as handle:
        while chunk := handle.read(CHUNK):
            total += len(chunk)
            _check_size(info, total, path)
            chunks.append(chunk)
    return b"".join(chunks)


def _size(count: int) -> str:
    return f"{count >> 30} GB" if count >= 1 << 30 else f"{count >> 20} MB"


def _keras_weights(weights_file: Any, config: Mapping[str, Any], path: Path) -> dict[str, list]:
    """Weights by layer name from ``model.weights.h5`` (``layers/<class_n>/vars/<i>``)."""
    layers = weights_file.get("layers")
    if layers is None:
        return {}
    by_path: dict[str, list[np.ndarray]] = {}
    by_name: dict[str, list[np.ndarray]] = {}
    for key in layers:
        group = layers[key]
        variables = group.get("vars")
        if "layers" in group:
            raise ModelError(
                f"{path}: layer group {key!r} holds a nested model, which convscope cannot "
                "import yet; rebuild the model as one flat Functional model"
            )
        arrays = _numbered(variables, path) if variables is not None else []
        by_path[key] = arrays
        name = variables.attrs.get("name") if variables is not None else None
        if name is not None:
            by_name[_text(name)] = arrays
    if by_name and len(by_name) == len(by_path):
        return by_name
    return _by_class_position(by_path, config)


def _numbered(group: Any, path: Path) -> list[np.ndarray]:
    keys = sorted(group.keys(), key=lambda k: int(k) if str(k).isdigit() else 1 << 30)
    return [_array(group[k], path) for k in keys]


def to_snake_case(name: str) -> str:
    """Keras' own ``to_snake_case`` (``BatchNormalization`` -> ``batch_normalization``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def _by_class_position(
    by_path: Mapping[str, list[np.ndarray]], config: Mapping[str, Any]
) -> dict[str, list[np.ndarray]]:
    """Map ``conv2d``, ``conv2d_1``, ... to layer names through the config's layer order."""
    body = config.get("config", {})
    entries = (
        body if isinstance(body, list) else body.get("layers", []) if isinstance(body, dict) else []
    )
    used: dict[str, int] = {}
    weights: dict[str, list[np.ndarray]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue  # not a layer: the model builder reports a bad config
        base = to_snake_case(str(entry.get("class_name", "")))
        if base in used:
            used[base] += 1
            key = f"{base}_{used[base]}"
        else:
            used[base] = 0
            key = base
        inner = entry.get("config")
        name = entry.get("name") or (inner.get("name") if isinstance(inner, dict) else None)
        if key in by_path and name and isinstance(name, (str, int)):
            weights[str(name)] = by_path[key]
    return weights


# --------------------------------------------------------------------------- legacy .h5


def _read_h5(path: Path) -> KerasFile:
    h5py = _h5py()
    try:
        with path.open("rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
            check_global_heaps(data, path)
    except (OSError, ValueError):
        pass  # an empty or unmappable file: h5py says what is wrong with it
    try:
        handle = h5py.File(path, "r")
    except DAMAGE as exc:
        raise ModelError(
            f"{path}: not a readable HDF5 file ({_reason(exc)}); it is damaged or truncated — "
            f"{RESAVE}"
        ) from exc
    try:
        with handle:
            raw = handle.attrs.get("model_config")
            if raw is None and "layer_names" in handle.attrs:
                raise ModelError(
                    f"{path}: holds weights only (saved with save_weights), no model "
                    f"architecture; {RESAVE}"
                )
            if raw is None:
                raise ModelError(
                    f"{path}: an HDF5 file but not a Keras model (no model_config); {RESAVE}"
                )
            config = json.loads(_text(raw))
            if not isinstance(config, dict):
                raise ModelError(f"{path}: its model_config is not a model config; {RESAVE}")
            group = handle.get("model_weights", handle)
            names = group.attrs.get("layer_names")
            layer_names = [_text(n) for n in names] if names is not None else list(group.keys())
            weights = {name: _h5_layer(group[name], name, path) for name in layer_names}
            version = handle.attrs.get("keras_version") or group.attrs.get("keras_version")
            version = _text(version) if version is not None else None
    except ModelError:
        raise
    except DAMAGE as exc:
        raise ModelError(
            f"{path}: a damaged or truncated .h5 file ({_reason(exc)}); {RESAVE}"
        ) from exc
    return KerasFile(path, "h5", config, weights, version)


GCOL = b"GCOL"


def check_global_heaps(data: bytes | mmap.mmap, path: Path) -> None:
    """Refuse an HDF5 file with a global heap collection the HDF5 library would loop on.

    HDF5 (up to 2.0 at least) walks a collection's objects by their stored sizes; a
    free-space object (index 0) of size 0 does not advance the walk, and reading any
    string attribute stored there never returns, inside C code no signal can stop.
    Keras writes such collections for every string attribute; a damaged one is refused
    here, before h5py reads it. Sizes are 8-byte lengths (h5py's and Keras' default).
    """
    at = data.find(GCOL)
    while at >= 0:
        if data[at + 4 : at + 5] == b"\x01" and at + 16 <= len(data):
            size = int.from_bytes(data[at + 8 : at + 16], "little")
            end = at + size
            p = at + 16
            while end <= len(data) and p + 16 <= end:
                index = int.from_bytes(data[p : p + 2], "little")
                length = int.from_bytes(data[p + 8 : p + 16], "little")
                need = 16 + (length + 7) // 8 * 8 if index else length
                if need == 0:
                    raise ModelError(
                        f"{path}: refused: a global heap of the HDF5 file is corrupt (a "
                        "zero-size object, on which the HDF5 library would never return); "
                        f"the file is damaged — {RESAVE}"
                    )
                p += need
        at = data.find(GCOL, at + 1)


def _h5_layer(group: Any, layer: str, path: Path) -> list[np.ndarray]:
    """A layer's arrays in the order of its ``weight_names``, whatever the layout."""
    arrays = []
    for weight in _texts(group.attrs.get("weight_names", [])):
        dataset = _find_dataset(group, weight)
        if dataset is None:
            raise ModelError(
                f"{path}: weight {weight!r} of layer {layer!r} is missing; the file is damaged"
            )
        arrays.append(_array(dataset, path))
    return arrays


def _array(dataset: Any, path: Path) -> np.ndarray:
    """A weight dataset's values, once its declared size is one the file can hold.

    A dataset may declare far more than it stores (a chunked one never written reads as
    its fill value): the same limits as a ``.keras`` member's keep it from taking memory.
    """
    if not isinstance(dataset, _h5py().Dataset):
        raise ModelError(f"{path}: {dataset.name!r} should be a weight array but is a group")
    declared = int(np.prod(dataset.shape or (0,), dtype=object)) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    limit = MEMBER_LIMITS["model.weights.h5"]
    if declared > limit or (declared > RATIO_FLOOR and declared > MAX_RATIO * max(stored, 1)):
        raise ModelError(
            f"{path}: refused: weight {dataset.name!r} declares {shape_text(dataset.shape)} "
            f"values ({declared:,} bytes) but the file stores {stored:,} bytes of it; "
            f"the file is damaged or not a Keras model — {RESAVE}"
        )
    return np.asarray(dataset[()])


def shape_text(shape: tuple[int, ...] | None) -> str:
    """``(3, 3, 1, 8)`` -> ``3x3x1x8``."""
    return "x".join(str(d) for d in shape) if shape else "no"


def _find_dataset(group: Any, weight: str) -> Any:
    """``weight`` under ``group``: with or without ``:0`` and the model/layer-name levels."""
    h5py = _h5py()
    parts = weight.split("/")
    for start in range(len(parts)):
        tail = "/".join(parts[start:])
        bare = tail.removesuffix(":0")
        for candidate in (tail, bare, f"{bare}:0"):
            found = group.get(candidate)
            if isinstance(found, h5py.Dataset):
                return found
    short = parts[-1].removesuffix(":0")
    matches: list[Any] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and name.split("/")[-1].removesuffix(":0") == short:
            matches.append(obj)

    group.visititems(visit)
    return matches[0] if len(matches) == 1 else None


def _text(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def _texts(values: Iterable[Any]) -> list[str]:
    return [_text(v) for v in values]
