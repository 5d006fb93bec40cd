"""Recorded kernels: every conv layer's weights, in the layout the kernel pictures use."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from convscope.train.recording import conv_kernels


def test_conv_kernels_are_out_by_in_also_for_transposed_convolutions() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(4, 6, 2), nn.Flatten(), nn.LazyLinear(2)
    )
    model(torch.zeros(1, 3, 8, 8))
    kernels = conv_kernels(model)
    assert set(kernels) == {"0", "1"}  # the dense layer has no kernels
    np.testing.assert_array_equal(kernels["0"], model[0].weight.detach().numpy())
    assert kernels["1"].shape == (6, 4, 2, 2)  # stored by torch as 4 x 6 x 2 x 2
    np.testing.assert_array_equal(
        kernels["1"], model[1].weight.detach().numpy().transpose(1, 0, 2, 3)
    )
    kernels["0"][...] = 0  # a copy, not a view of the live weights
    assert model[0].weight.abs().sum() > 0
