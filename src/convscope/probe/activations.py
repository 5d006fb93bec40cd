"""Capturing layer outputs with forward hooks that are always removed.

Hooks are borrowed, never kept: :func:`capture` registers them inside a context
manager and removes them on exit, also on error. Captured tensors are clones,
because a later in-place op (torchvision's ResNet reuses one ``ReLU(inplace=True)``
three times per block) would otherwise overwrite what was captured; every call of
a reused module is kept, in call order. Only the forward passes of the thread that
opened the block are recorded (see :mod:`convscope.probe.exclusive` for probes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from convscope.errors import LayerError
from convscope.naming import close_matches


def layer_names(module: nn.Module) -> list[str]:
    """Addressable layer names of ``module`` (its dotted module names, root excluded)."""
    return [name for name, _ in module.named_modules() if name]


def resolve_layers(module: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    """Modules for ``names``; an unknown name is an error with the close matches."""
    available = dict(module.named_modules())
    found: dict[str, nn.Module] = {}
    for name in names:
        if not name or name not in available:
            hint = close_matches(name, [n for n in available if n])
            raise LayerError(
                f"model has no layer {name!r}{hint} (list them with `convscope layers MODEL`)"
            )
        found[name] = available[name]
    return found


class Captured:
    """Outputs captured per layer: a list with one tensor per call of the module."""

    def __init__(self, names: Iterable[str]) -> None:
        self.calls: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def output(self, name: str, call: int = -1) -> torch.Tensor:
        """The output of ``name`` at one call (default: the last)."""
        calls = self.calls[name]
        if not calls:
            raise LayerError(f"layer {name!r} was not called in the forward pass")
        return calls[call]


def _first_tensor(output: object) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


@contextmanager
def capture(module: nn.Module, names: Iterable[str], *, detach: bool = True) -> Iterator[Captured]:
    """Record (clones of) the outputs of the named layers during forward passes in the block."""
    targets = resolve_layers(module, list(names))
    captured = Captured(targets)
    handles = []
    owner = threading.get_ident()  # another thread's forward pass is not ours to record

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if threading.get_ident() != owner:
                return
            tensor = _first_tensor(output)
            if tensor is not None:
                tensor = tensor.detach() if detach else tensor
                captured.calls[name].append(tensor.clone())

        return hook

    try:
        for name, layer in targets.items():
            handles.append(layer.register_forward_hook(hook_for(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
