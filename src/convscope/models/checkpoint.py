"""Checkpoints that carry everything needed to rebuild and use a model.

A checkpoint is a ``torch.save`` dict holding the state dict plus the build recipe,
input spec, class names and versions, readable with ``weights_only=True`` (no
arbitrary code runs on load). Writes are atomic: a crash never leaves a partial file.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from convscope.data.preprocess import InputSpec
from convscope.errors import ModelError
from convscope.files import atomic_write
from convscope.models.loaded import LoadedModel

FORMAT = "convscope-checkpoint"
FORMAT_VERSION = 1


def checkpoint_payload(model: LoadedModel, *, extra: dict[str, Any] | None = None) -> dict:
    """What a convscope checkpoint holds: the weights, how to rebuild the model, metadata."""
    from convscope import __version__

    if not model.build:
        raise ModelError(f"model {model.name} has no build recipe; it cannot be checkpointed")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": model.name,
        "build": model.build,
        "state_dict": model.module.state_dict(),
        "input_spec": model.input_spec.to_dict(),
        "class_names": list(model.class_names) if model.class_names else None,
        "outputs_probabilities": model.outputs_probabilities,
        "dataset": model.dataset,
        "weights": model.weights,
        "convscope_version": __version__,
        "torch_version": str(torch.__version__),
        "extra": extra or {},
    }


def save_checkpoint(model: LoadedModel, path: str | Path, *, extra: dict[str, Any] | None = None):
    """Write ``model`` with its metadata to ``path`` atomically; returns the path."""
    path = Path(path)
    payload = checkpoint_payload(model, extra=extra)
    with atomic_write(path) as handle:
        torch.save(payload, handle)
    return path


_FOREIGN_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x93NUMPY", "a NumPy array (.npy)"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model needs the .h5 suffix)"),
    (b"\x1f\x8b", "a gzip file (an IDX dataset file?)"),
)


def foreign_format(path: str | Path) -> str | None:
    """What a file is when its first bytes say it is not a PyTorch file (an image...), else None."""
    with Path(path).open("rb") as handle:
        head = handle.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    return next((kind for magic, kind in _FOREIGN_MAGIC if head.startswith(magic)), None)


_ADVICE = "pass a checkpoint saved by convscope or a state dict saved with torch.save"


def _not_torch(path: Path) -> str | None:
    """Why ``path`` cannot be a PyTorch file, from its size and first bytes; None if it may be.

    torch.save writes a zip archive holding ``*/data.pkl`` (or, before torch 1.6, a pickle,
    whose first byte is 0x80); anything else fails deep inside the unpickler with
    messages such as ``KeyError`` or "Unsupported operand", which tell a user nothing.
    """
    if path.stat().st_size == 0:
        return "is empty (0 bytes)"
    if kind := foreign_format(path):
        return f"is {kind}, not a PyTorch file"
    with path.open("rb") as handle:
        head = handle.read(4)
    if head == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "is a damaged zip archive, not a readable PyTorch file"
        if any(n.endswith("data.pkl") for n in names):
            return None
        if "config.json" in names:
            return "is a Keras archive, not a PyTorch file (give it the .keras suffix, as MODEL)"
        return "is a zip archive but not a PyTorch file (it holds no data.pkl)"
    if head[:1] != b"\x80":
        return "is not a PyTorch file (neither a zip archive nor a pickle)"
    return None


def _first_words(text: str, limit: int = 160) -> str:
    """The first line of ``text``, cut at a word boundary near ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + " ..."


def read_torch_file(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``, turning every failure into one clear error.

    A pickle that would call anything but the tensor-building functions (``os.system``, a
    ``__reduce__`` of any class) is refused without running it, and the error names it.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path} is a folder; {_ADVICE}")
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    if reason := _not_torch(path):
        raise ModelError(f"{path} {reason}; {_ADVICE}")
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": the refusal says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        refused = _weights_only_refusal(exc)
        if refused is not None:
            raise ModelError(
                f"{path}: refused: {refused}; convscope loads weights only — re-save it as a "
                "state dict or a convscope checkpoint"
            ) from exc
        detail = _first_words(str(exc)) or type(exc).__name__
        raise ModelError(
            f"{path}: not a readable PyTorch file, damaged or truncated ({detail}); {_ADVICE}"
        ) from exc


_GLOBAL = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")
_OS_MODULES = ("posix.", "nt.")  # os.system pickles as posix.system (nt.system on Windows)


def _weights_only_refusal(exc: BaseException) -> str | None:
    """What the weights-only unpickler refused, in words; None for any other failure."""
    text = str(exc)
    if "Weights only load failed" not in text and "WeightsUnpickler error" not in text:
        return None
    match = _GLOBAL.search(text)
    if match:
        name = match[1]
        for prefix in _OS_MODULES:
            if name.startswith(prefix):
                name = "os." + name.removeprefix(prefix)
        return f"the file's pickle would run code ({name})"
    detail = text.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler" in text else ""
    detail = " ".join(detail.split("Check the documentation", 1)[0].split())[:80]
    reason = f" ({detail})" if detail else ""
    return f"the file's pickle uses what a weights-only load does not allow{reason}"


def is_checkpoint(payload: Any) -> bool:
    """Whether a loaded torch file is a convscope checkpoint."""
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def load_checkpoint(path: str | Path) -> LoadedModel:
    """Rebuild the model saved in a convscope checkpoint, in eval mode.

    Fields added after the first checkpoints (class names, output kind, dataset, the
    input spec's later keys) are optional, so every older checkpoint still loads.
    """
    from convscope.models.loading import build_from_recipe, load_state_dict

    payload = read_torch_file(path)
    if not is_checkpoint(payload):
        raise ModelError(
            f"{path}: a PyTorch file but not a convscope checkpoint; to load a bare state dict "
            "name the architecture and pass the file with --weights, e.g. "
            f"`torchvision:resnet50 --weights {path}`"
        )
    _check_payload(payload, path)
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{path}: written by a newer convscope; upgrade convscope to read it")
    try:
        model = build_from_recipe(payload["build"])
    except KeyError as exc:
        raise ModelError(
            f"{path}: the checkpoint's build recipe lacks {exc}; it is damaged"
        ) from exc
    load_state_dict(model.module, payload["state_dict"], source=str(path))
    model.module.eval()  # like load_model: a loaded model is used, not trained, by default
    if payload.get("input_spec"):  # without one (hand-made files) the recipe's spec stands
        try:
            model.input_spec = InputSpec.from_dict(payload["input_spec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path}: the checkpoint's input_spec is damaged ({exc!r})") from exc
    model.class_names = tuple(payload["class_names"]) if payload.get("class_names") else None
    model.outputs_probabilities = bool(payload.get("outputs_probabilities", False))
    model.dataset = payload.get("dataset")
    model.name = payload.get("name", model.name)
    model.weights = str(payload.get("weights") or f"checkpoint {Path(path).name}")
    return model


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "format_version": (int,),
    "build": (dict,),
    "state_dict": (dict,),
    "input_spec": (dict, type(None)),
    "class_names": (list, tuple, type(None)),
}


def _check_payload(payload: dict[str, Any], path: str | Path) -> None:
    """Refuse a checkpoint whose fields are missing or of the wrong type (a damaged file)."""
    for key in ("build", "state_dict"):
        if key not in payload:
            raise ModelError(f"{path}: the checkpoint has no {key!r}; it is damaged, save it again")
    for key, types in _FIELD_TYPES.items():
        value = payload.get(key)
        if key in payload and (not isinstance(value, types) or isinstance(value, bool)):
            raise ModelError(
                f"{path}: the checkpoint's {key!r} is a {type(value).__name__}; it is damaged, "
                "save it again"
            )
    recipe = payload["build"]
    if not all(isinstance(recipe.get(k, ""), str) for k in ("name", "path", "factory")):
        raise ModelError(f"{path}: the checkpoint's build recipe is damaged (a name is no text)")
    if not isinstance(recipe.get("source"), str):
        raise ModelError(f"{path}: the checkpoint's build recipe names no source; it is damaged")
    if not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload["state_dict"].items()
    ):
        raise ModelError(f"{path}: the checkpoint's state_dict is not all tensors; it is damaged")
