"""evaluating(): eval mode and no gradients inside the block, every submodule's mode restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convscope.models.modes import evaluating


def test_modes_are_restored_per_submodule_also_on_error() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.BatchNorm1d(2))
    model.train()
    model[2].eval()  # a frozen BatchNorm inside a training model stays frozen
    with evaluating(model) as inside:
        assert inside is model and not any(m.training for m in model.modules())
        assert not torch.is_grad_enabled()
    assert model.training and model[1].training and not model[2].training
    with pytest.raises(RuntimeError), evaluating(model, grad=True):
        assert torch.is_grad_enabled()
        raise RuntimeError("boom")
    assert model.training and not model[2].training
