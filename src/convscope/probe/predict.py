"""Class probabilities for a batch of inputs, with the top classes named."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from convscope.errors import ConvscopeError
from convscope.models.loaded import LoadedModel


@dataclass(frozen=True)
class Prediction:
    """Probabilities of one input and its top-k ``(class name, probability)`` pairs."""

    input: str
    probs: list[float]
    top: list[tuple[str, float]]
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "input": self.input,
            "probs": self.probs,
            "top": [[name, p] for name, p in self.top],
        }
        if self.label is not None:
            data["label"] = self.label
        return data


@dataclass(frozen=True)
class Predictions:
    """The predictions of a batch; a table in the terminal and in Jupyter."""

    model: str
    predictions: list[Prediction] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"predictions": [p.to_dict() for p in self.predictions]}

    def __rich__(self) -> Any:
        from convscope.render.tables import predictions_table

        return predictions_table(self)

    def _repr_html_(self) -> str:
        from convscope.render.tables import predictions_html

        return predictions_html(self)


def probabilities(model: LoadedModel, batch: torch.Tensor) -> torch.Tensor:
    """Softmax of the logits, or the outputs themselves if the model ends in a softmax."""
    module = model.module
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            outputs = module(batch)
    finally:
        module.train(was_training)
    if not isinstance(outputs, torch.Tensor) or outputs.dim() != 2:
        shape = "x".join(map(str, outputs.shape)) if isinstance(outputs, torch.Tensor) else None
        raise ConvscopeError(
            f"{model.name} outputs {shape or type(outputs).__name__}, not one row of class "
            "scores per image (N x classes); predict needs a classifier. Look at its layers "
            "with `convscope features` instead"
        )
    return outputs if model.outputs_probabilities else torch.softmax(outputs, dim=1)


def predict(
    model: LoadedModel,
    batch: torch.Tensor,
    names: list[str],
    *,
    top_k: int = 3,
    labels: list[str | None] | None = None,
) -> Predictions:
    """Predict ``batch`` (N x C x H x W, already preprocessed); ``names`` label each input."""
    probs = probabilities(model, batch)
    classes = model.class_names or tuple(str(i) for i in range(probs.shape[1]))
    k = min(top_k, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    results = [
        Prediction(
            input=name,
            probs=[round(float(p), 6) for p in row],
            top=[(classes[int(i)], round(float(v), 6)) for v, i in zip(vals, idx, strict=True)],
            label=(labels[n] if labels else None),
        )
        for n, (name, row, vals, idx) in enumerate(zip(names, probs, values, indices, strict=True))
    ]
    return Predictions(model=model.name, predictions=results)
