"""A Keras model's call graph as one ``nn.Module`` whose children are the Keras layers.

Every Keras layer becomes a child module with the layer's name (``conv2d_1``), so
``--layer conv2d_1`` works as in the Keras tutorials; the forward pass runs the
calls in topological order and stays traceable by ``torch.fx``. A ``Flatten``
whose output only feeds ``Dense`` layers (possibly through element-wise layers
such as ``Dropout``) flattens in PyTorch's (C, H, W) order and those Dense layers
get their input rows reordered, which gives Keras' outputs exactly; any other
``Flatten`` flattens in Keras' channels-last order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from convscope.errors import ModelError
from convscope.models.keras.config import (
    MALFORMED,
    LayerSpec,
    ModelSpec,
    NodeSpec,
    Shape,
    malformed,
)
from convscope.models.keras.layers import PASS_THROUGH, build_layer, flatten_in_torch_order
from convscope.models.keras.weights import load_layer_weights

ORDER_FREE = {*PASS_THROUGH, "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"}
"""Single-input layers that commute with reordering a flat vector's elements."""


@dataclass(frozen=True)
class Step:
    """One layer call: child ``module`` on the tensors ``inputs``, result stored as ``output``.

    ``release`` lists tensors no later call reads, dropped right after this one.
    """

    module: str
    inputs: tuple[str, ...]
    output: str
    release: tuple[str, ...] = ()


class KerasGraph(nn.Module):
    """A Keras Sequential or Functional model; children are named after the Keras layers.

    Takes ``N x C x H x W`` images (Keras' ``N x H x W x C`` in PyTorch's order). A model
    whose input has no channel axis (``(H, W)``) takes ``N x 1 x H x W``.
    """

    def __init__(
        self,
        layers: Mapping[str, nn.Module],
        steps: list[Step],
        *,
        input_key: str,
        output_key: str,
        input_rank: int,
        keras_name: str = "model",
    ) -> None:
        super().__init__()
        self._steps = tuple(steps)
        self._input_key = input_key
        self._output_key = output_key
        self._input_rank = input_rank  # Keras rank without the batch axis
        self.keras_name = keras_name
        for name, module in layers.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._input_rank == 2:  # Keras (N, H, W) is (N, W, H) channels-first
            x = x[:, 0].transpose(1, 2)
        values = {self._input_key: x}
        for step in self._steps:
            values[step.output] = self._modules[step.module](*[values[k] for k in step.inputs])  # type: ignore[misc]
            for key in step.release:
                del values[key]
        return values[self._output_key]

    def extra_repr(self) -> str:
        return f"keras_name={self.keras_name!r}"


@dataclass
class GraphPlan:
    """The built graph plus what loading weights needs."""

    module: KerasGraph
    shapes: dict[str, Shape]
    module_names: dict[str, str]
    row_orders: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def output_shape(self) -> Shape:
        return self.shapes[self.module._output_key]


def module_name(keras_name: str, taken: set[str]) -> str:
    """A child-module name for a Keras layer: its own name unless PyTorch forbids it."""
    name = keras_name.replace(".", "_") or "layer"
    while name in taken or hasattr(KerasGraph, name) or name.startswith("_"):
        name = f"{name}_" if not name.startswith("_") else f"layer{name}"
    taken.add(name)
    return name


def build_graph(spec: ModelSpec, *, source: str) -> GraphPlan:
    """Build the module of ``spec`` with fresh (untrained) weights."""
    _check_input(spec.input_shape, source)
    shapes: dict[str, Shape] = {spec.input.key: spec.input_shape}
    modules: dict[str, nn.Module] = {}
    for node in spec.nodes:
        layer = spec.layers[node.layer]
        inputs = []
        for ref in node.inputs:
            if ref.index != 0 or ref.key not in shapes:
                raise ModelError(f"{source}: layer {layer.name!r} reads an unknown tensor {ref}")
            inputs.append(shapes[ref.key])
        try:
            module, shape = build_layer(layer, inputs)
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from exc
        except (*MALFORMED, RuntimeError, MemoryError) as exc:  # torch refuses the sizes too
            raise malformed(f"{source}: layer {layer.name!r} ({layer.class_name})", exc) from exc
        if layer.name not in modules:
            if not layer.trainable:
                module.requires_grad_(False)
            modules[layer.name] = module
        shapes[node.output.key] = shape
    if spec.output.key not in shapes or spec.output.key == spec.input.key:
        raise ModelError(f"{source}: the model output {spec.output.layer!r} is not computed")
    row_orders = _plan_flattens(spec, shapes, modules)
    taken: set[str] = set()
    names = {layer: module_name(layer, taken) for layer in modules}
    steps = _steps(spec, names)
    graph = KerasGraph(
        {names[layer]: module for layer, module in modules.items()},
        steps,
        input_key=spec.input.key,
        output_key=spec.output.key,
        input_rank=len(spec.input_shape),
        keras_name=spec.name,
    )
    return GraphPlan(module=graph, shapes=shapes, module_names=names, row_orders=row_orders)


def _check_input(shape: Shape, source: str) -> None:
    if len(shape) == 3 and shape[2] in (1, 3):
        return
    if len(shape) == 2:
        return
    raise ModelError(
        f"{source}: the model takes inputs of shape {shape}; convscope imports image models "
        "taking (H, W), (H, W, 1) or (H, W, 3)"
    )


def _steps(spec: ModelSpec, names: Mapping[str, str]) -> list[Step]:
    last_use: dict[str, int] = {}
    for i, node in enumerate(spec.nodes):
        for ref in node.inputs:
            last_use[ref.key] = i
    steps = []
    for i, node in enumerate(spec.nodes):
        release = tuple(
            sorted(
                {
                    ref.key
                    for ref in node.inputs
                    if last_use.get(ref.key) == i and ref.key != spec.output.key
                }
            )
        )
        steps.append(
            Step(names[node.layer], tuple(r.key for r in node.inputs), node.output.key, release)
        )
    return steps


def _plan_flattens(
    spec: ModelSpec, shapes: Mapping[str, Shape], modules: dict[str, nn.Module]
) -> dict[str, np.ndarray]:
    """Turn Flattens that feed only Dense layers into PyTorch flattens; the Dense row orders."""
    consumers = spec.consumers()
    row_orders: dict[str, np.ndarray] = {}
    for name, layer in spec.layers.items():
        if layer.class_name != "Flatten":
            continue
        calls = spec.calls(name)
        in_shape = shapes[calls[0].inputs[0].key]
        if flatten_in_torch_order(in_shape):
            modules[name] = nn.Flatten()
            continue
        if len(calls) != 1:
            continue
        dense = _dense_consumers(spec, calls[0], consumers)
        if not dense:
            continue
        modules[name] = nn.Flatten()
        order = flatten_row_order(in_shape)
        for target in dense:
            row_orders[target] = order
    return row_orders


def flatten_row_order(shape: Shape) -> np.ndarray:
    """For each position of a channels-first flatten of ``shape``, its Keras flat index."""
    size = math.prod(int(v) for v in shape if v is not None)
    keras_index = np.arange(size).reshape([int(v) for v in shape if v is not None])
    return np.moveaxis(keras_index, -1, 0).ravel()


def _dense_consumers(
    spec: ModelSpec, flatten: NodeSpec, consumers: Mapping[str, list[NodeSpec]]
) -> list[str] | None:
    """The Dense layers a Flatten's output reaches through order-free layers, else None."""
    targets: list[str] = []
    pending = [flatten.output.key]
    while pending:
        key = pending.pop()
        if key == spec.output.key:
            return None
        for node in consumers.get(key, []):
            layer = spec.layers[node.layer]
            if len(node.inputs) != 1 or len(spec.calls(layer.name)) != 1:
                return None
            if layer.class_name == "Dense":
                targets.append(layer.name)
            elif _order_free(layer):
                pending.append(node.output.key)
            else:
                return None
    return targets


def _order_free(layer: LayerSpec) -> bool:
    if layer.class_name == "Rescaling":
        return not any(isinstance(layer.config.get(k), (list, tuple)) for k in ("scale", "offset"))
    return layer.class_name in ORDER_FREE


def load_graph_weights(
    plan: GraphPlan, spec: ModelSpec, weights: Mapping[str, list[np.ndarray]], *, source: str
) -> None:
    """Copy the Keras weights (by layer name, in Keras' order) into the built graph."""
    for name, module_key in plan.module_names.items():
        layer = spec.layers[name]
        module = plan.module.get_submodule(module_key)
        arrays = weights.get(name)
        if arrays is None:
            arrays = []
        try:
            load_layer_weights(layer, module, arrays, row_order=plan.row_orders.get(name))
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}") from exc
    unused = sorted(set(weights) - set(plan.module_names))
    unused = [n for n in unused if weights[n]]
    if unused:
        raise ModelError(
            f"{source}: the file holds weights for layers the model config does not use "
            f"({', '.join(unused[:3])}); it is damaged or not a whole-model file"
        )
