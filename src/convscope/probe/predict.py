"""Class probabilities for a batch of inputs, with the top classes named."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from convscope.data.classes import class_names_for
from convscope.errors import ConvscopeError
from convscope.models.loaded import LoadedModel
from convscope.models.modes import evaluating
from convscope.probe.base import TableResult
from convscope.probe.classes import class_indices
from convscope.probe.exclusive import one_at_a_time


@dataclass(frozen=True)
class Prediction:
    """Probabilities of one input and its top-k ``(class name, probability)`` pairs."""

    input: str
    probs: list[float]
    top: list[tuple[str, float]]
    label: str | None = None
    chosen: list[tuple[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "input": self.input,
            "probs": self.probs,
            "top": [[name, p] for name, p in self.top],
        }
        if self.label is not None:
            data["label"] = self.label
        if self.chosen is not None:
            data["classes"] = [[name, p] for name, p in self.chosen]
        return data


@dataclass(frozen=True)
class Predictions(TableResult):
    """The predictions of a batch; a table in the terminal and in Jupyter."""

    model: str
    predictions: list[Prediction] = field(default_factory=list)
    model_weights: str = ""

    @property
    def probabilities(self) -> np.ndarray:
        """All probabilities as one ``N x classes`` float32 array, in input order."""
        return np.asarray([p.probs for p in self.predictions], dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weights": self.model_weights,
            "predictions": [p.to_dict() for p in self.predictions],
        }

    def __rich__(self) -> Any:
        from convscope.render.tables import predictions_table

        return predictions_table(self)

    def _repr_html_(self) -> str:
        from convscope.render.tables import predictions_html

        return predictions_html(self)


@one_at_a_time
def probabilities(model: LoadedModel, batch: torch.Tensor) -> torch.Tensor:
    """Softmax of the logits, or the outputs themselves if the model ends in a softmax."""
    module = model.module
    with evaluating(module):
        outputs = module(batch)
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
    batch: str | torch.Tensor,
    names: list[str] | None = None,
    *,
    top_k: int = 3,
    labels: list[str | None] | None = None,
    classes: int | str | Sequence[int | str] | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> Predictions:
    """Predict the images a SPEC names (``"mnist:test:0-8"``, a file, a folder), a path, a
    Pillow image or a list of images, or a preprocessed ``batch``. ``model`` may be a MODEL string.

    A tensor ``batch`` is N x C x H x W, already preprocessed; ``names`` label its rows
    (default ``0..N-1``). A SPEC brings its own names and, for dataset samples, labels.
    ``classes`` (the grammar of :mod:`convscope.probe.classes`: ``"Sandal"``, ``"0-2"``,
    ``"all"``) adds the probability of each of those classes to every prediction.
    """
    from convscope.data.stream import names_images, open_images
    from convscope.probe.exclusive import as_model, needs_loaded

    model = as_model(model, input_shape)
    needs_loaded(model, "predict")
    if top_k < 1:
        raise ConvscopeError(f"top_k must be at least 1, got {top_k}")
    if names_images(batch) or isinstance(batch, (list, tuple)):
        from convscope.data.spec import resolve_images, to_batch

        if isinstance(batch, str):
            images = resolve_images(batch, input_spec=model.input_spec)
        else:  # a path, a Pillow image, a list of them or of loaded images
            images = open_images(batch, input_spec=model.input_spec).images()
        batch = to_batch(images, model.input_spec)
        names = names or [image.name for image in images]
        labels = labels or [image.label_name for image in images]
    if not isinstance(batch, torch.Tensor) or batch.dim() != 4:
        raise ConvscopeError(
            "predict takes an image SPEC or an N x C x H x W tensor, "
            f"got {type(batch).__name__}{tuple(batch.shape) if hasattr(batch, 'shape') else ''}"
        )
    if batch.shape[1] != model.input_spec.channels:
        expected = " x ".join(map(str, model.input_spec.shape))
        raise ConvscopeError(
            f"{model.name} takes N x {expected} inputs, got {' x '.join(map(str, batch.shape))}; "
            "pass an image SPEC to have it converted"
        )
    names = names if names is not None else [str(i) for i in range(len(batch))]
    if len(names) != len(batch) or (labels is not None and len(labels) != len(batch)):
        raise ConvscopeError(f"give one name (and label) per image: {len(batch)} images")
    probs = probabilities(model, batch)
    names_of_classes = class_names_for(model.class_names, probs.shape[1])
    chosen = None if classes is None else class_indices(classes, names_of_classes)
    k = min(top_k, probs.shape[1])
    values, indices = probs.topk(k, dim=1)
    results = [
        Prediction(
            input=name,
            probs=[float(p) for p in row],  # full float32 precision: 3e-8 is not 0.0
            top=[(names_of_classes[int(i)], float(v)) for v, i in zip(vals, idx, strict=True)],
            label=(labels[n] if labels else None),
            chosen=None
            if chosen is None
            else [(names_of_classes[c], float(row[c])) for c in chosen],
        )
        for n, (name, row, vals, idx) in enumerate(zip(names, probs, values, indices, strict=True))
    ]
    return Predictions(model=model.name, predictions=results, model_weights=model.weights)
