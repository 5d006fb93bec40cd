"""A model together with what convscope needs to use it: input spec, classes, origin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from convscope.data.preprocess import InputSpec
from convscope.models.provenance import is_untrained


def weights_of(model: object) -> str:
    """The weights description of a :class:`LoadedModel`; ``""`` for a bare module."""
    return getattr(model, "weights", "") if isinstance(model, LoadedModel) else ""


@dataclass
class LoadedModel:
    """An ``nn.Module`` plus its input spec, class names and how to rebuild it.

    ``build`` is a JSON-ready recipe (``{"source": "zoo", "name": "lenet", "kwargs": {}}``)
    that checkpoints store so a saved model needs nothing else to load. ``weights`` says
    in words where the weights came from (``"random init (seed 0)"``, ``"file r50.pth"``,
    ``"run 3fa2c1d0 epoch 5"``), so every output can say when a model is untrained.
    """

    module: nn.Module
    name: str
    input_spec: InputSpec
    class_names: tuple[str, ...] | None = None
    outputs_probabilities: bool = False
    build: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    weights: str = ""

    @property
    def untrained(self) -> bool:
        """Whether the weights are a random initialisation (nothing was learned yet)."""
        return is_untrained(self.weights)

    def __repr__(self) -> str:
        params = sum(p.numel() for p in self.module.parameters())
        return (
            f"LoadedModel(name={self.name!r}, params={params:,}, "
            f"input={self.input_spec.shape}, classes={len(self.class_names or ())}, "
            f"source={self.build.get('source')!r}, weights={self.weights!r})"
        )


def module_and_shape(
    model: LoadedModel | nn.Module, input_shape: tuple[int, ...] | None = None
) -> tuple[nn.Module, tuple[int, ...], str]:
    """The module, its input shape ``(C, H, W)`` and a display name, for probes that run
    one example input (summary, diagram). A bare module must be given its shape; a
    MODEL string is loaded."""
    if isinstance(model, str):
        from convscope.models.loading import load_model

        model = load_model(model)
    if isinstance(model, LoadedModel):
        return model.module, tuple(input_shape or model.input_spec.shape), model.name
    if not isinstance(model, nn.Module):
        from convscope.errors import ConvscopeError

        raise ConvscopeError(f"expected a LoadedModel or an nn.Module, got {type(model).__name__}")
    if input_shape is None:
        from convscope.errors import ConvscopeError

        raise ConvscopeError(
            "a bare nn.Module needs input_shape=(C, H, W); or load it with "
            "convscope.load_model to use its input spec"
        )
    return model, tuple(input_shape), type(model).__name__
