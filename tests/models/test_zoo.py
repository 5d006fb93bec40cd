"""The zoo reproduces the references' architectures: parameter counts, names, arithmetic."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.models.layers import SameConv2d, he_normal_
from convscope.models.lenet5_classic import (
    C3_CONNECTIONS,
    DIGIT_BITMAPS,
    PartialConv2d,
    RBFOutput,
    Subsampling,
    digit_prototypes,
)
from convscope.models.loading import load_model
from convscope.models.registry import zoo
from convscope.probe.summary import count_params

# Keras' totals for the reference code: (total, non-trainable).
TOTALS = {
    "lenet": (656_080, 0),
    "lenet5": (44_426, 0),
    "lenet5-classic": (60_840, 840),
    "sequential": (59_082, 0),
    "inception": (169_130, 0),
    "residual": (59_466, 192),
    "inception-residual": (106_410, 384),
}

PER_LAYER = {
    "lenet": {"conv2d_1": 520, "conv2d_2": 25_050, "dense_1": 625_500, "dense_2": 5_010},
    "lenet5": {
        "conv2d_1": 156,
        "conv2d_2": 2_416,
        "dense_1": 30_840,
        "dense_2": 10_164,
        "dense_3": 850,
    },
    "lenet5-classic": {
        "C1": 156,
        "S2": 12,
        "C3": 1_516,
        "S4": 32,
        "C5": 48_120,
        "F6": 10_164,
        "output": 840,
    },
}


@pytest.mark.parametrize("name", sorted(TOTALS))
def test_totals_match_keras(name: str) -> None:
    total, non_trainable = TOTALS[name]
    module = load_model(name).module
    all_params, trainable = count_params(module)
    assert (all_params, all_params - trainable) == (total, non_trainable)


@pytest.mark.parametrize("name", sorted(PER_LAYER))
def test_per_layer_counts(name: str) -> None:
    module = load_model(name).module
    counts = {n: sum(p.numel() for p in m.parameters()) for n, m in module.named_children()}
    assert {k: counts[k] for k in PER_LAYER[name]} == PER_LAYER[name]


@pytest.mark.parametrize("name", [n for n, e in zoo().items() if e.dataset != "imagenet"])
def test_forward_gives_ten_logits(name: str) -> None:
    model = load_model(name)
    out = model.module(torch.zeros(2, *model.input_spec.shape))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_study_models_use_reference_layer_names() -> None:
    names = {n for n, _ in load_model("inception-residual").module.named_children()}
    assert {
        "conv2D_1",
        "conv2D_12",
        "batc6",
        "acti7",
        "add3",
        "pool3",
        "drop3",
        "flat1",
        "hidden",
        "end",
    } <= names
    sequential = [n for n, _ in load_model("sequential").module.named_children()]
    assert sequential[:5] == ["conv2D_1", "conv2D_2", "acti1", "pool1", "drop1"]
    assert sequential[-4:] == ["flat1", "hidden", "acti4", "end"]


def test_hidden_layer_is_dense_128_for_all_study_models() -> None:
    for name in ("sequential", "inception", "residual", "inception-residual"):
        hidden = load_model(name).module.get_submodule("hidden")
        assert isinstance(hidden, nn.Linear) and hidden.out_features == 128


def test_keras_batchnorm_settings() -> None:
    bn = load_model("residual").module.get_submodule("batc1")
    assert bn.eps == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.01)


def test_he_normal_matches_keras_truncated_normal() -> None:
    weight = torch.empty(256, 64, 3, 3)
    torch.manual_seed(0)
    he_normal_(weight)
    fan_in = 64 * 9
    target_std = math.sqrt(2 / fan_in)
    assert weight.std().item() == pytest.approx(target_std, rel=0.02)
    assert weight.abs().max().item() <= 2 * target_std / 0.87962566103423978 + 1e-7


def test_same_padding_of_even_kernel_pads_bottom_right() -> None:
    conv = SameConv2d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    # Keras/TensorFlow put the extra zero row and column after the data.
    assert conv(x).squeeze().tolist() == [[10.0, 6.0], [7.0, 4.0]]


def test_same_conv_equals_torch_same_conv() -> None:
    torch.manual_seed(0)
    ours = SameConv2d(3, 4, 2)
    reference = nn.Conv2d(3, 4, 2, padding="same")
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 7, 7)
    with pytest.warns(UserWarning):
        expected = reference(x)
    torch.testing.assert_close(ours(x), expected)


def test_c3_connection_table_and_dense_weight() -> None:
    assert sum(len(c) for c in C3_CONNECTIONS) == 60
    assert [len(c) for c in C3_CONNECTIONS] == [3] * 6 + [4] * 9 + [6]
    c3 = PartialConv2d(C3_CONNECTIONS, 6, 5)
    dense = c3.weight
    for out, inputs in enumerate(C3_CONNECTIONS):
        for inp in range(6):
            connected = bool(dense[out, inp].abs().sum() > 0)
            assert connected == (inp in inputs)
    x = torch.randn(1, 6, 14, 14)
    expected = 1.7159 * torch.tanh(2 / 3 * F.conv2d(x, dense, c3.bias))
    torch.testing.assert_close(c3(x), expected)


def test_subsampling_is_scaled_window_sum() -> None:
    s2 = Subsampling(1)
    with torch.no_grad():
        s2.weight.fill_(0.5)
        s2.bias.fill_(0.1)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    window_sums = torch.tensor(
        [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]
    )
    expected = 1.7159 * torch.tanh(2 / 3 * (0.5 * window_sums + 0.1))
    torch.testing.assert_close(s2(x)[0, 0], expected)


def test_rbf_output_is_negative_squared_distance_to_fixed_bitmaps() -> None:
    prototypes = digit_prototypes()
    assert prototypes.shape == (10, 84)
    assert set(prototypes.unique().tolist()) == {-1.0, 1.0}
    assert all(len(b.replace(" ", "")) == 84 for b in DIGIT_BITMAPS)
    rbf = RBFOutput(prototypes)
    assert not rbf.weight.requires_grad
    x = prototypes[3:4].clone()
    out = rbf(x)
    assert out[0, 3].item() == 0.0
    assert out[0].argmax().item() == 3
    assert out[0, 8].item() == -((prototypes[3] - prototypes[8]) ** 2).sum().item()
