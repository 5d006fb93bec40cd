"""What a run records each epoch: layer outputs on a fixed probe set, and conv kernels.

Recording runs on the probe set only, in eval mode under ``torch.no_grad()``, with
hooks scoped by :func:`convscope.probe.activations.capture`; the model's training
flag is restored afterwards. The probe set is a seeded stratified sample of the
validation part, fixed for the whole run, so every epoch's snapshot shows the same
images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from convscope.data.preprocess import InputSpec
from convscope.data.sampling import stratified_indices
from convscope.models.modes import evaluating
from convscope.probe.activations import capture, resolve_layers
from convscope.probe.kernels.weights import kernel_weight


@dataclass(frozen=True)
class ProbeSet:
    """Probe images (uint8, at model size), their labels and indices in the training split."""

    indices: np.ndarray
    pixels: torch.Tensor
    labels: np.ndarray


def make_probe_set(
    pixels: torch.Tensor, labels: np.ndarray, pool: np.ndarray, per_class: int, seed: int
) -> ProbeSet:
    """``per_class`` images of each class drawn (seeded) from the indices in ``pool``."""
    chosen = pool[stratified_indices(labels[pool], per_class, seed=seed, strict=False)]
    return ProbeSet(indices=chosen, pixels=pixels[chosen], labels=labels[chosen])


def conv_kernels(module: nn.Module) -> dict[str, np.ndarray]:
    """The weights of every convolution (any layer with a 4-D ``weight``), by layer name.

    Always ``out x in x H x W`` (a transposed convolution's axes are swapped to match),
    the layout :func:`convscope.probe.kernels.kernel_set` shows.
    """
    kernels = {}
    for name, layer in module.named_modules():
        weight = kernel_weight(layer) if name else None
        if weight is not None:
            kernels[name] = weight.detach().to(torch.float32).contiguous().numpy().copy()
    return kernels


def record_probe(
    module: nn.Module,
    probe: ProbeSet,
    spec: InputSpec,
    layers: list[str],
    batch_size: int = 500,
    *,
    outputs_probabilities: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Outputs of ``layers`` and the model's class probabilities for every probe image.

    One forward pass per batch gives both: the snapshots (float32, batch axis first) and
    the softmax of the model's output (``N x classes``, float32), from which the
    dashboard colours a map by the class predicted at that epoch, or by right/wrong.
    """
    if layers:
        resolve_layers(module, layers)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    outputs: list[torch.Tensor] = []
    with evaluating(module), torch.no_grad():
        for start in range(0, len(probe.labels), batch_size):
            x = spec.normalize(probe.pixels[start : start + batch_size])
            with capture(module, layers) as got:
                logits = module(x)
            scores = logits.to(torch.float32).flatten(1)
            outputs.append(scores if outputs_probabilities else torch.softmax(scores, dim=1))
            for name in layers:
                parts[name].append(got.output(name).to(torch.float32))
    snapshots = {name: torch.cat(chunks).contiguous().numpy() for name, chunks in parts.items()}
    return snapshots, torch.cat(outputs).numpy()
