"""Turn a MODEL argument into a :class:`LoadedModel`.

MODEL is a zoo name, ``torchvision:NAME``, ``timm:NAME``, ``path/file.py:factory``
or a checkpoint file; ``weights`` loads a state dict (or a checkpoint's) into it.
"""

from __future__ import annotations

import errno
import importlib.util
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convscope.data.classes import dataset_class_names
from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.errors import ModelError
from convscope.models.loaded import LoadedModel
from convscope.models.modes import evaluating
from convscope.models.provenance import random_init_label, run_epoch_label
from convscope.naming import close_matches

MODEL_FORMS = (
    "a zoo name (see `convscope models`), torchvision:NAME, timm:NAME, "
    "path/file.py:factory, run:ID, a Keras .keras/.h5 file, or a checkpoint file"
)


def load_model(
    spec: str,
    *,
    weights: str | Path | None = None,
    input_shape: tuple[int, int, int] | None = None,
    seed: int | None = 0,
    store: str | Path | None = None,
    preprocess: str | None = None,
) -> LoadedModel:
    """Build or load the model ``spec`` names, in eval mode on the CPU.

    A freshly built model is initialised from ``seed`` (default 0), so two calls give the
    same weights and every command is reproducible (the caller's random state is left as
    it was; ``seed=None`` draws from it). The result's ``weights`` says where the weights
    came from (``"random init (seed 0)"`` for an untrained model). ``run:ID`` is the run's
    latest checkpoint and ``run:ID@EPOCH`` that epoch's (0 is before the first update),
    read from ``store`` (default ./convscope-runs). ``preprocess`` (``scale``, ``none``,
    ``tf``, ``caffe``, ``torch``; see :data:`convscope.models.keras.PREPROCESS_MODES`)
    replaces the input normalisation of any model, Keras or not; the input size is kept.
    """
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32
    ):
        raise ModelError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}")
    if spec.startswith("run:"):
        model = _from_run(spec.split(":", 1)[1], store)
    elif seed is None:
        model = _resolve(spec, input_shape=input_shape)
        materialize_lazy(model)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _resolve(spec, input_shape=input_shape)
            materialize_lazy(model)  # lazy layers draw their initial weights here
    if not model.weights:
        model.weights = _built_weights_label(model, spec, seed)
    if weights is not None:
        load_weights(model, weights)
    check_finite(model.module, source=str(weights or spec))
    if preprocess is not None:
        from convscope.models.keras.preprocess import with_preprocess

        model.input_spec = with_preprocess(model.input_spec, preprocess)
    model.module.eval()
    return model


def _built_weights_label(model: LoadedModel, spec: str, seed: int | None) -> str:
    """Where a model's weights came from when nothing loaded any into it."""
    source = model.build.get("source")
    if source == "keras":
        return f"Keras file {Path(spec).name}"
    if source == "file":  # the factory may load weights itself: say only what is known
        return f"as {spec} builds it " + ("(unseeded)" if seed is None else f"(seed {seed})")
    return random_init_label(seed)


def _resolve(spec: str, *, input_shape: tuple[int, int, int] | None) -> LoadedModel:
    from convscope.models.registry import zoo

    if spec in zoo():
        return build_from_recipe({"source": "zoo", "name": spec})
    if spec.startswith("torchvision:"):
        return build_from_recipe({"source": "torchvision", "name": spec.split(":", 1)[1]})
    if spec.startswith("timm:"):
        return build_from_recipe({"source": "timm", "name": spec.split(":", 1)[1]})
    match = re.fullmatch(r"(?P<file>.+\.py):(?P<factory>[A-Za-z_][A-Za-z0-9_]*)", spec)
    _refuse_long_name(match["file"] if match else spec, f"; MODEL is {MODEL_FORMS}")
    if match:
        recipe = {"source": "file", "path": match["file"], "factory": match["factory"]}
        if input_shape:
            recipe["input_shape"] = list(input_shape)
        return build_from_recipe(recipe)
    path = Path(spec)
    if path.suffix.lower() == ".py":
        raise ModelError(
            f"{spec}: name the function that builds the model, as FILE.py:FUNCTION "
            f"(e.g. {spec}:build)"
        )
    if path.is_dir():
        raise ModelError(f"{spec} is a folder; give a model file, a zoo name or FILE.py:FUNCTION")
    if path.suffix.lower() in (".keras", ".h5", ".hdf5"):
        from convscope.models.keras import load_keras

        return load_keras(path, input_shape=input_shape)
    if path.exists():
        from convscope.models.checkpoint import foreign_format, load_checkpoint

        if path.is_file() and (kind := foreign_format(path)):
            raise ModelError(f"{spec} is {kind}, not a model; MODEL is {MODEL_FORMS}")
        return load_checkpoint(path)
    if path.suffix or "/" in spec:
        raise ModelError(f"{spec}: no such file")
    raise ModelError(f"unknown model {spec!r}{close_matches(spec, zoo())}; MODEL is {MODEL_FORMS}")


def _refuse_long_name(text: str | Path, hint: str = "") -> None:
    """A name no file can have (past the OS's limit) is a ModelError, not an OSError.

    ``Path.is_dir`` and ``is_file`` raise ``ENAMETOOLONG`` instead of answering False.
    """
    try:
        Path(text).stat()
    except ValueError:  # a NUL byte: is_dir and is_file answer False to it themselves
        return
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ModelError(
                f"{str(text)[:60]}...: no such file (the name is too long for a file){hint}"
            ) from exc


def _from_run(ref: str, store_path: str | Path | None) -> LoadedModel:
    """A run's checkpoint: ``ID`` for its latest, ``ID@EPOCH`` for that epoch's."""
    from convscope.models.checkpoint import load_checkpoint
    from convscope.store import DEFAULT_STORE_DIR, open_store

    run_ref, at, epoch_text = ref.partition("@")
    if at and not epoch_text:
        raise ModelError(
            f"run:{ref}: give the epoch after @, e.g. run:{run_ref}@0 (before training)"
        )
    with open_store(store_path or DEFAULT_STORE_DIR, create=False) as store:
        run = store.run(run_ref)
        checkpoints = store.checkpoints(run.id)
        if not checkpoints:
            raise ModelError(f"run {run.id} ({run.name}) has no checkpoint yet")
        if epoch_text:
            epoch = _parse_epoch(epoch_text, ref)
            if epoch not in checkpoints:
                raise ModelError(  # "unknown model": the dashboard answers it 404
                    f"unknown model 'run:{ref}': run {run.id} ({run.name}) has no checkpoint "
                    f"of epoch {epoch}; it has epochs {_epoch_ranges(sorted(checkpoints))}"
                )
        else:
            epoch = max(checkpoints)
        model = load_checkpoint(checkpoints[epoch])
    model.weights = run_epoch_label(run.id, epoch)
    return model


def _parse_epoch(text: str, ref: str) -> int:
    if not text.isdigit():
        raise ModelError(
            f"run:{ref}: the epoch after @ must be a whole number such as run:ID@0 or run:ID@5"
        )
    return int(text)


def _epoch_ranges(epochs: list[int]) -> str:
    """``[0, 1, 2, 3, 5]`` -> ``"0-3, 5"``: the epochs a run has, short."""
    parts: list[str] = []
    start = previous = epochs[0]
    for epoch in [*epochs[1:], None]:
        if epoch is not None and epoch == previous + 1:
            previous = epoch
            continue
        parts.append(str(start) if start == previous else f"{start}-{previous}")
        if epoch is not None:
            start = previous = epoch
    return ", ".join(parts)


def build_from_recipe(recipe: Mapping[str, Any]) -> LoadedModel:
    """Build a fresh model from a recipe (``source`` + name / path and factory)."""
    source = recipe.get("source")
    builders = {
        "zoo": _build_zoo,
        "torchvision": _build_torchvision,
        "timm": _build_timm,
        "file": _build_file,
        "keras": _build_keras,
    }
    if source not in builders:
        raise ModelError(f"unknown model source {source!r} in checkpoint recipe")
    model = builders[source](recipe)
    model.build = dict(recipe)
    return model


def _build_zoo(recipe: Mapping[str, Any]) -> LoadedModel:
    from convscope.models.registry import zoo_entry

    entry = zoo_entry(recipe["name"])
    if entry.dataset == "imagenet":
        from convscope.models.torchvision_models import imagenet_class_names

        class_names = imagenet_class_names("resnet50")
    else:
        class_names = dataset_class_names(entry.dataset)
    return LoadedModel(
        module=entry.factory(),
        name=entry.name,
        input_spec=entry.input_spec,
        class_names=class_names,
        dataset=entry.dataset,
    )


def _build_keras(recipe: Mapping[str, Any]) -> LoadedModel:
    from convscope.models.keras import build_keras

    return build_keras(recipe)


def _build_torchvision(recipe: Mapping[str, Any]) -> LoadedModel:
    from convscope.models import torchvision_models as tv

    name = recipe["name"]
    kwargs = dict(recipe.get("kwargs") or {})  # what pretrained weights need (googlenet...)
    module = tv.build_torchvision(name, pretrained=bool(recipe.get("pretrained")), **kwargs)
    return LoadedModel(
        module=module,
        name=f"torchvision:{name}",
        input_spec=tv.imagenet_input_spec(name),
        class_names=tv.imagenet_class_names(name),
        dataset="imagenet",
    )


def _build_timm(recipe: Mapping[str, Any]) -> LoadedModel:
    try:
        import timm
    except ImportError as exc:
        raise ModelError("timm is not installed; run `pip install 'convscope[timm]'`") from exc
    name = recipe["name"]
    arch = name.partition(".")[0]  # NAME may carry a pretrained tag: efficientnet_lite0.ra_in1k
    if arch not in timm.list_models():
        raise ModelError(f"timm has no model {arch!r}{close_matches(arch, timm.list_models())}")
    module = timm.create_model(name, pretrained=False)
    return LoadedModel(module=module, name=f"timm:{name}", input_spec=timm_input_spec(module))


def timm_input_spec(module: nn.Module) -> InputSpec:
    """The input a timm model's pretrained config describes (size, crop, normalisation)."""
    cfg = getattr(module, "pretrained_cfg", {}) or {}
    channels, height, width = cfg.get("input_size", (3, 224, 224))
    crop_pct = float(cfg.get("crop_pct", 0.875))
    return InputSpec(
        channels=channels,
        height=height,
        width=width,
        mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        resize=ResizePolicy.CENTER_CROP,
        resize_to=round(height / crop_pct),
    )


def _build_file(recipe: Mapping[str, Any]) -> LoadedModel:
    path = Path(recipe["path"])
    if not path.is_file():
        raise ModelError(f"{path}: no such Python file")
    module_name = f"convscope_user_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"{path}: cannot import it as a Python module")
    user_module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(user_module)
    except (Exception, SystemExit) as exc:
        raise ModelError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(module_name, None)
    factory = getattr(user_module, recipe["factory"], None)
    if not callable(factory):
        names = [
            n
            for n in vars(user_module)
            if callable(getattr(user_module, n)) and not n.startswith("_")
        ]
        raise ModelError(
            f"{path} has no function {recipe['factory']!r}{close_matches(recipe['factory'], names)}"
        )
    try:
        module = factory()
    except (Exception, SystemExit) as exc:  # the user's code failed: say where and what
        detail = " ".join(str(exc).split())[:200]
        raise ModelError(
            f"{path}:{recipe['factory']}() raised {type(exc).__name__}"
            f"{': ' + detail if detail else ''}; fix the factory (CONVSCOPE_DEBUG=1 shows "
            "the traceback)"
        ) from exc
    if not isinstance(module, nn.Module):
        raise ModelError(
            f"{path}:{recipe['factory']} returned {type(module).__name__}, not an nn.Module"
        )
    return LoadedModel(
        module=module,
        name=f"{path.stem}:{recipe['factory']}",
        input_spec=_user_input_spec(module, recipe, path),
        class_names=tuple(getattr(module, "class_names", ()) or ()) or None,
    )


def _user_input_spec(module: nn.Module, recipe: Mapping[str, Any], path: Path) -> InputSpec:
    """A user model's input: its ``input_spec`` attribute, else ``--input-shape``."""
    declared = getattr(module, "input_spec", None)
    if isinstance(declared, InputSpec):
        return declared
    if isinstance(declared, Mapping):
        return InputSpec.from_dict(dict(declared))
    shape = recipe.get("input_shape")
    if not shape:
        raise ModelError(
            f"{path}:{recipe['factory']}: say what input the model takes with --input-shape C,H,W "
            "(or give the module an `input_spec` attribute)"
        )
    channels, height, width = (int(v) for v in shape)
    return InputSpec(channels=channels, height=height, width=width)


def materialize_lazy(model: LoadedModel) -> None:
    """Run one dummy input through a model with lazy layers so their weights exist."""
    from torch.nn.parameter import UninitializedParameter

    if not any(isinstance(p, UninitializedParameter) for p in model.module.parameters()):
        return
    try:
        with evaluating(model.module):
            model.module(torch.zeros(1, *model.input_spec.shape))
    except RuntimeError as exc:
        raise ModelError(
            f"{model.name}: running an input of shape {model.input_spec.shape} failed ({exc}); "
            "check --input-shape"
        ) from exc


def load_weights(model: LoadedModel, weights: str | Path) -> None:
    """Load weights into ``model``: a file, a URL, or pretrained weights by name.

    A file (or a ``Path``) holds a state dict, a ``{"state_dict"|"model": ...}`` dict or a
    checkpoint. ``http(s)://...`` is downloaded with ``torch.hub`` into its cache first.
    A bare name (``imagenet``, ``IMAGENET1K_V2``, a timm tag) takes the library's own
    pretrained weights (:mod:`convscope.models.pretrained`); a file that exists wins.
    """
    from convscope.models.checkpoint import is_checkpoint, read_torch_file

    if isinstance(weights, str):
        from convscope.models import pretrained

        if pretrained.is_url(weights):
            pretrained.load_from_url(model, weights)
            return
        if pretrained.is_weights_name(weights):
            pretrained.load_pretrained(model, weights)
            return
    _refuse_long_name(weights)
    payload = read_torch_file(weights)
    if is_checkpoint(payload):
        payload = payload["state_dict"]
    elif isinstance(payload, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(payload.get(key), Mapping):
                payload = payload[key]
                break
    if not isinstance(payload, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in payload.values()
    ):
        raise ModelError(f"{weights}: holds no state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in payload.items()}
    load_state_dict(model.module, state, source=str(weights))
    model.weights = f"file {Path(weights).name}"


def load_state_dict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line error naming what does not fit."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(
                f"unexpected {', '.join(unexpected[:3])}{'...' if len(unexpected) > 3 else ''}"
            )
        if wrong:
            k = wrong[0]
            parts.append(
                f"{k} is {tuple(state[k].shape)} but the model has {tuple(expected[k].shape)}"
            )
        raise ModelError(f"{source}: weights do not fit the model ({'; '.join(parts)})")
    module.load_state_dict(dict(state), strict=True)


def check_finite(module: nn.Module, *, source: str) -> None:
    """Refuse weights with NaN or infinity: every picture made from them would be wrong."""
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelError(
                f"{source}: weights of {name} contain NaN or infinity; "
                "the training diverged — load an earlier checkpoint or retrain with a lower learning rate"
            )
