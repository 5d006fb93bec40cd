"""Parse a Keras model config (Sequential or Functional, Keras 2 or 3) into a call graph.

Keras 2 and Keras 3 write the same model differently: Keras 3 stores each call's
inputs as ``{"args": [...keras tensors...], "kwargs": {...}}`` and an input shape
as ``batch_shape``; Keras 2 stores ``[[layer, node, tensor, kwargs], ...]`` and
``batch_input_shape``, and old Sequential configs have no InputLayer at all. This
module hides those differences behind one small data model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from convscope.errors import ModelError

Shape = tuple[int | None, ...]
"""A Keras tensor shape without the batch axis (``None`` where any size is accepted)."""

MODEL_CLASSES = ("Sequential", "Functional", "Model")
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda")
"""Layer classes whose config holds code (marshalled bytecode, a TensorFlow op name)."""
KERAS_MODULES = ("keras", "tf_keras")
"""Where Keras' own layer classes live; a layer from any other module is user code."""
NO_CODE = "convscope never runs code stored in or named by a model file"
MALFORMED = (
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    ZeroDivisionError,
)
"""What reading a config value of the wrong type or range raises (``int("same")``,
``None.get``, a missing key): each is a :func:`malformed` error, not a traceback."""
RESAVE = "save the whole model again with model.save('model.keras')"


def malformed(where: str, exc: BaseException) -> ModelError:
    """The one-line error for a config that holds a value of the wrong type or range."""
    reason = " ".join(str(exc).split())[:120] or type(exc).__name__
    return ModelError(f"{where}: the model config is malformed ({reason}); {RESAVE}")


@dataclass(frozen=True)
class TensorRef:
    """Output ``index`` of call ``call`` of Keras layer ``layer``."""

    layer: str
    call: int = 0
    index: int = 0

    @property
    def key(self) -> str:
        """A string key for this tensor, unique in the model."""
        return f"{self.layer}:{self.call}:{self.index}"


@dataclass(frozen=True)
class LayerSpec:
    """One Keras layer: its name, class and config (``config`` as Keras wrote it)."""

    name: str
    class_name: str
    config: Mapping[str, Any]

    @property
    def trainable(self) -> bool:
        return bool(self.config.get("trainable", True))


@dataclass(frozen=True)
class NodeSpec:
    """One call of a layer on input tensors; its output is ``TensorRef(layer, call)``."""

    layer: str
    call: int
    inputs: tuple[TensorRef, ...]

    @property
    def output(self) -> TensorRef:
        return TensorRef(self.layer, self.call, 0)


@dataclass
class ModelSpec:
    """A Keras model as a graph: layers by name and their calls in topological order."""

    name: str
    class_name: str
    layers: dict[str, LayerSpec]
    nodes: list[NodeSpec]
    input: TensorRef
    input_shape: Shape
    output: TensorRef

    def consumers(self) -> dict[str, list[NodeSpec]]:
        """For each tensor key, the calls that take it as input."""
        users: dict[str, list[NodeSpec]] = {}
        for node in self.nodes:
            for ref in node.inputs:
                users.setdefault(ref.key, []).append(node)
        return users

    def calls(self, layer: str) -> list[NodeSpec]:
        """The calls of one layer."""
        return [node for node in self.nodes if node.layer == layer]


def parse_model_config(model_config: Mapping[str, Any], *, source: str) -> ModelSpec:
    """The :class:`ModelSpec` of a top-level model config ``{"class_name", "config"}``."""
    class_name = model_config.get("class_name")
    body = model_config.get("config")
    if class_name not in MODEL_CLASSES or body is None:
        raise ModelError(
            f"{source}: holds a {class_name or 'unknown'} config, not a Sequential or "
            "Functional Keras model"
        )
    try:
        if class_name == "Sequential":
            return _sequential(model_config, source)
        return _functional(model_config, source)
    except MALFORMED as exc:
        raise malformed(source, exc) from exc


def _layer_spec(entry: Mapping[str, Any], source: str) -> LayerSpec:
    if not isinstance(entry, Mapping) or "class_name" not in entry:
        raise ModelError(f"{source}: a layer entry of the model config is malformed")
    config = entry.get("config") or {}
    name = entry.get("name") or config.get("name")
    if not isinstance(name, str) or not name:
        raise ModelError(f"{source}: a {entry['class_name']} layer has no name in the config")
    class_name = str(entry["class_name"])
    _refuse_code(entry, class_name, name, source)
    if class_name in MODEL_CLASSES:
        raise ModelError(
            f"{source}: layer {name!r} is a nested {class_name} model, which convscope cannot "
            "import yet; rebuild the model as one flat Functional model"
        )
    return LayerSpec(name=name, class_name=class_name, config=config)


def _refuse_code(entry: Mapping[str, Any], class_name: str, name: str, source: str) -> None:
    """Refuse a layer that is code: a Lambda, or a class of the user's own."""
    if class_name in CODE_LAYERS:
        raise ModelError(
            f"{source}: layer {name!r} is a {class_name} layer, which stores Python code; "
            f"{NO_CODE} — replace it with built-in Keras layers and save the model again"
        )
    module = entry.get("module")
    registered = entry.get("registered_name")
    custom_module = isinstance(module, str) and module.split(".")[0] not in KERAS_MODULES
    custom_name = isinstance(registered, str) and registered not in ("", class_name)
    if custom_module or custom_name:
        where = registered if custom_name else f"{module}.{class_name}"
        raise ModelError(
            f"{source}: layer {name!r} is a custom class {where}, whose code is not in "
            f"convscope; {NO_CODE} — use built-in Keras layers and save the model again"
        )


def _batch_shape(config: Mapping[str, Any]) -> list[Any] | None:
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return list(config[key])
    return None


def _shape(batch_shape: Iterable[Any] | None, source: str) -> Shape:
    if batch_shape is None:
        raise ModelError(
            f"{source}: the model config does not say what input shape it takes; "
            "build the model with keras.Input(shape=...) and save it again"
        )
    dims = list(batch_shape)[1:]
    return tuple(None if d is None else int(d) for d in dims)


def _sequential(model_config: Mapping[str, Any], source: str) -> ModelSpec:
    body = model_config["config"]
    entries = body if isinstance(body, list) else body.get("layers", [])
    name = "sequential" if isinstance(body, list) else str(body.get("name", "sequential"))
    layers = [_layer_spec(entry, source) for entry in entries]
    input_layer = layers[0] if layers and layers[0].class_name == "InputLayer" else None
    body_layers = [layer for layer in layers if layer.class_name != "InputLayer"]
    if not body_layers:
        raise ModelError(f"{source}: the Sequential model has no layers")
    batch_shape = (
        (_batch_shape(input_layer.config) if input_layer else None)
        or _batch_shape(body_layers[0].config)
        or (body.get("build_input_shape") if isinstance(body, Mapping) else None)
        or (model_config.get("build_config") or {}).get("input_shape")
    )
    input_name = input_layer.name if input_layer else _unique("input", {x.name for x in layers})
    nodes, previous = [], TensorRef(input_name)
    for layer in body_layers:
        nodes.append(NodeSpec(layer.name, 0, (previous,)))
        previous = TensorRef(layer.name)
    _check_unique(body_layers, source)
    return ModelSpec(
        name=name,
        class_name="Sequential",
        layers={layer.name: layer for layer in body_layers},
        nodes=nodes,
        input=TensorRef(input_name),
        input_shape=_shape(batch_shape, source),
        output=previous,
    )


def _functional(model_config: Mapping[str, Any], source: str) -> ModelSpec:
    body = model_config["config"]
    entries = body.get("layers", [])
    layers = [_layer_spec(entry, source) for entry in entries]
    _check_unique(layers, source)
    inputs = _refs(body.get("input_layers", []))
    outputs = _refs(body.get("output_layers", []))
    if len(inputs) != 1:
        raise ModelError(
            f"{source}: the model has {len(inputs)} inputs; convscope imports models "
            "that take one image"
        )
    if len(outputs) != 1:
        raise ModelError(
            f"{source}: the model has {len(outputs)} outputs; convscope imports models "
            "with one output"
        )
    by_name = {layer.name: layer for layer in layers}
    input_layer = by_name.get(inputs[0].layer)
    if input_layer is None or input_layer.class_name != "InputLayer":
        raise ModelError(f"{source}: the model input {inputs[0].layer!r} is not an InputLayer")
    nodes: list[NodeSpec] = []
    for entry, layer in zip(entries, layers, strict=True):
        if layer.class_name == "InputLayer":
            continue
        for call, node_data in enumerate(entry.get("inbound_nodes") or []):
            refs = _node_inputs(node_data)
            if not refs:
                raise ModelError(f"{source}: call {call} of layer {layer.name!r} has no inputs")
            nodes.append(NodeSpec(layer.name, call, tuple(refs)))
    ordered = _topological(nodes, inputs[0], by_name, source)
    return ModelSpec(
        name=str(body.get("name", "model")),
        class_name="Functional",
        layers={layer.name: layer for layer in layers if layer.class_name != "InputLayer"},
        nodes=ordered,
        input=inputs[0],
        input_shape=_shape(_batch_shape(input_layer.config), source),
        output=outputs[0],
    )


def _check_unique(layers: list[LayerSpec], source: str) -> None:
    seen: set[str] = set()
    for layer in layers:
        if layer.name in seen:
            raise ModelError(f"{source}: two layers are named {layer.name!r}")
        seen.add(layer.name)


def _unique(base: str, taken: set[str]) -> str:
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _is_ref(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) >= 3
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    )


def _refs(value: Any) -> list[TensorRef]:
    """``input_layers``/``output_layers``: one ``[name, node, index]`` or a list of them."""
    if _is_ref(value):
        return [TensorRef(value[0], value[1], value[2])]
    if isinstance(value, Mapping):  # Keras 3 may key them by name
        return [ref for v in value.values() for ref in _refs(v)]
    if isinstance(value, (list, tuple)):
        return [ref for v in value for ref in _refs(v)]
    return []


def _node_inputs(node_data: Any) -> list[TensorRef]:
    """The input tensors of one inbound node, in either Keras format."""
    if isinstance(node_data, Mapping) and ("args" in node_data or "kwargs" in node_data):
        refs = _keras3_tensors(node_data.get("args", []))
        return refs or _keras3_tensors(node_data.get("kwargs", {}))
    return _refs(node_data)  # Keras 2: [[name, node, index, kwargs], ...]


def _keras3_tensors(value: Any) -> list[TensorRef]:
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            history = value.get("config", {}).get("keras_history")
            return [TensorRef(history[0], history[1], history[2])] if _is_ref(history) else []
        return [ref for v in value.values() for ref in _keras3_tensors(v)]
    if isinstance(value, (list, tuple)):
        return [ref for v in value for ref in _keras3_tensors(v)]
    return []


def _topological(
    nodes: list[NodeSpec],
    model_input: TensorRef,
    layers: Mapping[str, LayerSpec],
    source: str,
) -> list[NodeSpec]:
    """The calls ordered so each comes after the calls producing its inputs (config order kept)."""
    known = {model_input.key}
    produced = {node.output.key for node in nodes}
    for node in nodes:
        for ref in node.inputs:
            if ref.key not in produced and ref.key != model_input.key:
                if ref.layer in layers and layers[ref.layer].class_name == "InputLayer":
                    raise ModelError(
                        f"{source}: layer {node.layer!r} reads a second input "
                        f"{ref.layer!r}; convscope imports models that take one image"
                    )
                raise ModelError(
                    f"{source}: layer {node.layer!r} reads {ref.layer!r} (call {ref.call}), "
                    "which the model config does not define"
                )
    pending, ordered = list(nodes), []
    while pending:  # one pass when the config is already in order (Keras writes it so)
        waiting = []
        for node in pending:
            if all(ref.key in known for ref in node.inputs):
                ordered.append(node)
                known.add(node.output.key)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ModelError(f"{source}: the layers of the model config form a cycle")
        pending = waiting
    return ordered
