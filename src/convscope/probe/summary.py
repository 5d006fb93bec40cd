"""The architecture summary: one row per module with its output shape and parameters.

Built on torchinfo for the forward-order walk and output shapes. Parameter counts
follow Keras' ``summary()``: BatchNorm running mean and variance count as
non-trainable parameters, as do parameters with ``requires_grad=False``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torchinfo
from torch import nn

from convscope.errors import ConvscopeError, ModelError
from convscope.models.loaded import LoadedModel, module_and_shape, weights_of
from convscope.probe.base import TableResult


@dataclass(frozen=True)
class LayerRow:
    """One module of the summary (``name`` is its dotted module name)."""

    name: str
    type: str
    depth: int
    output_shape: list[int] | list[list[int]]
    params: int
    trainable_params: int


@dataclass(frozen=True)
class ModelSummary(TableResult):
    """What Keras ``summary()`` prints, as data; renders itself in a terminal and Jupyter."""

    model: str
    input_shape: list[int]
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    model_weights: str = ""
    mult_adds: int = 0
    input_bytes: int = 0
    forward_backward_bytes: int = 0
    params_bytes: int = 0

    @property
    def estimated_total_bytes(self) -> int:
        """Input, forward/backward pass and parameters together, as torchinfo estimates."""
        return self.input_bytes + self.forward_backward_bytes + self.params_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the CLI contract's keys."""
        data = asdict(self)
        data["weights"] = data.pop("model_weights")
        return data | {"estimated_total_bytes": self.estimated_total_bytes}

    def __rich__(self) -> Any:
        from convscope.render.summary import summary_table

        return summary_table(self)

    def _repr_html_(self) -> str:
        from convscope.render.summary import summary_html

        return summary_html(self)

    def __str__(self) -> str:
        from convscope.render.summary import summary_text

        return summary_text(self)


def batch_norm_momentum(module: nn.Module) -> float | None:
    """The smallest running-statistics momentum of the model's batch norms (None without any).

    PyTorch's momentum is the weight of the newest batch: Keras' ``momentum=0.99`` is
    PyTorch's 0.01. After ``n`` updates the running statistics still carry ``(1 - m)**n``
    of their initial values, which is why few updates leave them unsettled.
    """
    found = [
        float(layer.momentum)
        for layer in module.modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.momentum is not None
    ]
    return min(found) if found else None


def count_params(module: nn.Module) -> tuple[int, int]:
    """(all, trainable) parameters of a module and its children, BN statistics included."""
    total = trainable = 0
    for p in module.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._NormBase) and sub.track_running_stats:
            for buffer in (sub.running_mean, sub.running_var):
                total += buffer.numel() if buffer is not None else 0
    return total, trainable


def summarize(
    model: LoadedModel | nn.Module,
    input_shape: tuple[int, ...] | None = None,
    *,
    name: str | None = None,
    depth: int = 4,
) -> ModelSummary:
    """Summarise ``model`` on one input of ``input_shape`` (C, H, W; default: its input spec).

    Besides the layers and parameter totals it gives what torchinfo estimates for one
    input: the mult-adds of a forward pass and the memory of the input, of the
    forward/backward pass and of the parameters.
    """
    if depth < 1:
        raise ConvscopeError(f"depth must be at least 1, got {depth}")
    module, input_shape, default_name = module_and_shape(model, input_shape)
    name = name or default_name
    names = {id(m): n for n, m in module.named_modules()}
    try:
        stats = torchinfo.summary(
            module,
            input_data=torch.zeros(1, *input_shape),
            depth=depth,
            verbose=0,
            mode="eval",
            device="cpu",
        )
    except RuntimeError as exc:
        cause = str(exc.__cause__ or exc).strip().splitlines()[-1][:160]
        raise ModelError(
            f"{name or type(module).__name__}: an input of shape {tuple(input_shape)} does not "
            f"run through the model ({cause}); check --input-shape"
        ) from exc
    rows = []
    for info in stats.summary_list:
        if info.depth == 0 or info.depth > depth:
            continue
        params, trainable = count_params(info.module)
        if info.is_recursive:
            params = trainable = 0  # a module called again: counted at its first call
        rows.append(
            LayerRow(
                name=names.get(id(info.module), info.var_name),
                type=info.class_name,
                depth=info.depth,
                output_shape=info.output_size,
                params=params,
                trainable_params=trainable,
            )
        )
    total, trainable = count_params(module)
    return ModelSummary(
        model=name or type(module).__name__,
        input_shape=list(input_shape),
        layers=rows,
        total_params=total,
        trainable_params=trainable,
        non_trainable_params=total - trainable,
        model_weights=weights_of(model),
        mult_adds=int(stats.total_mult_adds),
        input_bytes=int(stats.total_input),
        forward_backward_bytes=int(stats.total_output_bytes),
        params_bytes=int(stats.total_param_bytes),
    )
