"""Borrowing a model for inference: eval mode (and no gradients) inside a block only.

torchinfo restores ``model.training`` in ``finally``; every convscope probe, exporter
and recorder does the same through :func:`evaluating`, so a user's model is never left
in a mode it was not in (pytorch-grad-cam's habit of calling ``model.eval()`` for good).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn


@contextmanager
def evaluating(module: nn.Module, *, grad: bool = False) -> Iterator[nn.Module]:
    """``module`` in eval mode inside the block, under ``no_grad`` unless ``grad``.

    Its own mode (training or not, per submodule) is restored afterwards, also on error.
    """
    modes = [(sub, sub.training) for sub in module.modules()]
    module.eval()
    try:
        with nullcontext() if grad else torch.no_grad():
            yield module
    finally:
        for sub, mode in modes:
            sub.training = mode
