"""Keras models (``.keras`` and legacy ``.h5``) as PyTorch modules, without TensorFlow.

:func:`load_keras` reads the file with h5py and JSON and builds a
:class:`~convscope.models.keras.graph.KerasGraph` whose children carry the Keras
layer names and whose outputs match Keras' (kernels HWIO -> OIHW, TensorFlow's
``'same'`` padding, Keras' BatchNormalization epsilon, channels-last Flatten). The
build recipe holds the Keras config, so a convscope checkpoint of an imported
model rebuilds without the original file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convscope.data.preprocess import InputSpec
from convscope.errors import ModelError
from convscope.models.keras.config import ModelSpec, parse_model_config
from convscope.models.keras.files import KerasFile, read_keras_file
from convscope.models.keras.graph import GraphPlan, KerasGraph, build_graph, load_graph_weights
from convscope.models.keras.layers import supported_layers
from convscope.models.keras.modules import activation_name
from convscope.models.keras.preprocess import PREPROCESS_MODES, with_preprocess
from convscope.models.loaded import LoadedModel

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")

__all__ = [
    "KERAS_SUFFIXES",
    "PREPROCESS_MODES",
    "KerasFile",
    "KerasGraph",
    "build_keras",
    "load_keras",
    "read_keras_file",
    "supported_layers",
    "with_preprocess",
]


def load_keras(
    path: str | Path,
    preprocess: str | None = None,
    *,
    input_shape: tuple[int, int, int] | None = None,
) -> LoadedModel:
    """The Keras model in ``path`` as a :class:`LoadedModel` with Keras' weights, in eval mode.

    ``preprocess`` is one of :data:`PREPROCESS_MODES` (default: ``scale``, pixels / 255,
    or ``none`` when the model starts with a Rescaling layer). ``input_shape`` (C, H, W)
    is needed only for models that accept any image size.
    """
    keras_file = read_keras_file(path)
    recipe: dict[str, Any] = {
        "source": "keras",
        "path": str(path),
        "config": keras_file.model_config,
    }
    if input_shape is not None:
        recipe["input_shape"] = list(input_shape)
    model, plan, spec = _build(recipe)
    load_graph_weights(plan, spec, keras_file.weights, source=str(path))
    if preprocess is not None:
        model.input_spec = with_preprocess(model.input_spec, preprocess)
    model.module.eval()
    return model


def build_keras(recipe: Mapping[str, Any]) -> LoadedModel:
    """Rebuild an imported Keras model's architecture (fresh weights) from its recipe.

    The recipe holds the Keras model config (``config``); an older recipe with only a
    ``path`` reads the config (and the weights) from that file again.
    """
    if recipe.get("config") is None:
        if not recipe.get("path"):
            raise ModelError("a Keras build recipe needs the model config or the file path")
        return load_keras(recipe["path"])
    return _build(recipe)[0]


def _build(recipe: Mapping[str, Any]) -> tuple[LoadedModel, GraphPlan, ModelSpec]:
    source = str(recipe.get("path") or "keras model")
    spec = parse_model_config(recipe["config"], source=source)
    plan = build_graph(spec, source=source)
    shape = recipe.get("input_shape")
    input_spec = _input_spec(spec, tuple(shape) if shape else None, source)
    input_spec = with_preprocess(input_spec, _default_preprocess(spec))
    name = Path(recipe["path"]).name if recipe.get("path") else spec.name
    model = LoadedModel(
        module=plan.module,
        name=name,
        input_spec=input_spec,
        class_names=None,
        outputs_probabilities=ends_in_softmax(spec, plan.output_shape),
        build=dict(recipe),
        dataset=None,
    )
    model.module.eval()
    return model, plan, spec


def _input_spec(spec: ModelSpec, given: tuple[int, ...] | None, source: str) -> InputSpec:
    """Channels and size from the Keras input layer ((H, W, C) -> C, H, W)."""
    shape = spec.input_shape
    channels = int(shape[2]) if len(shape) == 3 and shape[2] is not None else 1
    height, width = shape[0], shape[1]
    if height is None or width is None:
        if given is None:
            raise ModelError(
                f"{source}: the model takes images of any size; say which with --input-shape C,H,W"
            )
        height = height or int(given[1])
        width = width or int(given[2])
    return InputSpec(channels=channels, height=int(height), width=int(width))


def _default_preprocess(spec: ModelSpec) -> str:
    """``none`` when every first layer is a Rescaling (it scales raw pixels itself)."""
    first = spec.consumers().get(spec.input.key, [])
    if first and all(spec.layers[n.layer].class_name == "Rescaling" for n in first):
        return "none"
    return "scale"


def ends_in_softmax(spec: ModelSpec, output_shape: tuple[int | None, ...]) -> bool:
    """Whether the model outputs class probabilities: a vector out of a softmax."""
    layer = spec.layers[spec.output.layer]
    if len(output_shape) != 1:
        return False
    if layer.class_name == "Softmax":
        return True
    if "activation" in layer.config:
        try:
            return activation_name(layer.config["activation"], layer.name) == "softmax"
        except ModelError:
            return False
    return False
