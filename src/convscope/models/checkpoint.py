"""Checkpoints that carry everything needed to rebuild and use a model.

A checkpoint is a ``torch.save`` dict holding the state dict plus the build recipe,
input spec, class names and versions, readable with ``weights_only=True`` (no
arbitrary code runs on load). Writes are atomic: a crash never leaves a partial file.
"""

from __future__ import annotations

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


def save_checkpoint(model: LoadedModel, path: str | Path, *, extra: dict[str, Any] | None = None):
    """Write ``model`` with its metadata to ``path`` atomically; returns the path."""
    from convscope import __version__

    path = Path(path)
    if not model.build:
        raise ModelError(f"model {model.name} has no build recipe; it cannot be checkpointed")
    payload = {
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
    with atomic_write(path) as handle:
        torch.save(payload, handle)
    return path


def read_torch_file(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True``, turning every failure into one clear error."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"{path}: not a readable PyTorch file ({first_line[:120]}); "
            "pass a checkpoint saved by convscope or a state dict saved with torch.save"
        ) from exc
    except Exception as exc:  # pickle.UnpicklingError and friends from a corrupt file
        raise ModelError(f"{path}: corrupt or unsafe PyTorch file ({type(exc).__name__})") from exc


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
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise ModelError(f"{path}: written by a newer convscope; upgrade convscope to read it")
    model = build_from_recipe(payload["build"])
    load_state_dict(model.module, payload["state_dict"], source=str(path))
    model.module.eval()  # like load_model: a loaded model is used, not trained, by default
    if payload.get("input_spec"):  # without one (hand-made files) the recipe's spec stands
        model.input_spec = InputSpec.from_dict(payload["input_spec"])
    model.class_names = tuple(payload["class_names"]) if payload.get("class_names") else None
    model.outputs_probabilities = bool(payload.get("outputs_probabilities", False))
    model.dataset = payload.get("dataset")
    model.name = payload.get("name", model.name)
    model.weights = str(payload.get("weights") or f"checkpoint {Path(path).name}")
    return model
