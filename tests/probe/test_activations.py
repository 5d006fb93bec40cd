"""Hooks capture the true outputs of every call and never outlive the block."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convscope.errors import LayerError
from convscope.models.loading import load_model
from convscope.probe.activations import capture


def _hook_count(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


def test_captures_layer_outputs_and_removes_hooks() -> None:
    model = load_model("residual", seed=0).module
    x = torch.randn(2, 1, 28, 28)
    with capture(model, ["hidden", "pool1"]) as got:
        model(x)
    assert _hook_count(model) == 0
    assert got.output("hidden").shape == (2, 128)
    assert got.output("pool1").shape == (2, 32, 14, 14)
    # The captured hidden output is the true one: the head applied to it gives the logits.
    model.eval()
    with capture(model, ["hidden"]) as again, torch.no_grad():
        logits = model(x)
    torch.testing.assert_close(model.end(model.acti4(again.output("hidden"))), logits)


def test_hooks_removed_after_an_exception() -> None:
    model = load_model("lenet5", seed=0).module
    with pytest.raises(RuntimeError, match="boom"), capture(model, ["conv2d_1", "dense_1"]):
        assert _hook_count(model) == 2
        raise RuntimeError("boom")
    assert _hook_count(model) == 0


def test_unknown_layer_lists_close_matches() -> None:
    model = load_model("sequential").module
    with pytest.raises(LayerError, match="did you mean hidden"), capture(model, ["hiden"]):
        pass
    assert _hook_count(model) == 0


def test_reused_inplace_relu_in_torchvision_resnet() -> None:
    """torchvision's Bottleneck calls one in-place ReLU three times; keep all three, unclobbered."""
    model = load_model("torchvision:resnet18", seed=0).module.eval()
    block = model.layer1[0]
    x = torch.randn(1, 3, 64, 64)
    with capture(model, ["layer1.0.relu", "layer1.0.bn1"]) as got, torch.no_grad():
        model(x)
    assert len(got.calls["layer1.0.relu"]) == 2  # BasicBlock: after bn1 and after the add
    bn1 = got.output("layer1.0.bn1")
    # The in-place ReLU overwrote the real bn1 output; the clone kept the negative values.
    assert (bn1 < 0).any()
    torch.testing.assert_close(got.calls["layer1.0.relu"][0], bn1.clamp(min=0))
    assert block.relu.inplace


def test_borrowed_hooks_are_removed_on_error_and_ignore_other_threads() -> None:
    import threading

    import pytest
    import torch
    from torch import nn

    from convscope.probe.activations import borrowed_hooks

    layer = nn.Linear(2, 2)
    seen: list[int] = []

    def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        seen.append(output.shape[0])

    with pytest.raises(RuntimeError), borrowed_hooks([(layer, hook)], [(layer, lambda *_: None)]):
        other = threading.Thread(target=lambda: layer(torch.zeros(5, 2)))
        other.start()
        other.join()
        layer(torch.zeros(1, 2))
        raise RuntimeError("boom")
    assert seen == [1]  # the other thread's pass was not seen
    assert not layer._forward_hooks and not layer._forward_pre_hooks
