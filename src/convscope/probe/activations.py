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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

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


ForwardHook = Callable[[nn.Module, Any, Any], None]
PreHook = Callable[[nn.Module, Any], None]


@contextmanager
def borrowed_hooks(
    forward: Iterable[tuple[nn.Module, ForwardHook]] = (),
    pre: Iterable[tuple[nn.Module, PreHook]] = (),
    *,
    this_thread: bool = True,
) -> Iterator[None]:
    """Forward hooks (``forward``) and pre-hooks (``pre``) registered for the block only.

    The one way convscope hooks into a model: every hook is removed on exit, also on
    an error or when registering a later one fails, and (``this_thread``) a hook runs
    only for forward passes of the thread that opened the block.
    """
    owner = threading.get_ident()

    def mine(hook: Callable[..., None]) -> Callable[..., None]:
        if not this_thread:
            return hook

        def guarded(*args: Any) -> None:
            if threading.get_ident() == owner:
                hook(*args)

        return guarded

    handles: list[Any] = []
    try:
        for module, hook in forward:
            handles.append(module.register_forward_hook(mine(hook)))
        for module, hook in pre:
            handles.append(module.register_forward_pre_hook(mine(hook)))
        yield
    finally:
        for handle in handles:
            handle.remove()


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

    def hook_for(name: str) -> ForwardHook:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            tensor = _first_tensor(output)
            if tensor is not None:
                tensor = tensor.detach() if detach else tensor
                captured.calls[name].append(tensor.clone())

        return hook

    with borrowed_hooks([(layer, hook_for(name)) for name, layer in targets.items()]):
        yield captured
