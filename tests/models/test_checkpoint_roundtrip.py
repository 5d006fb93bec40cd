"""Checkpoints keep everything a model needs: preprocessing, class names, output kind, weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.errors import ModelError
from convscope.models.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from convscope.models.loading import load_model


def _assert_same_model(loaded, model, x: torch.Tensor) -> None:
    assert loaded.name == model.name
    assert loaded.input_spec == model.input_spec
    assert loaded.input_spec.to_dict() == model.input_spec.to_dict()  # also ``extra``
    assert loaded.class_names == model.class_names
    assert loaded.outputs_probabilities is model.outputs_probabilities
    assert loaded.dataset == model.dataset
    assert loaded.build == model.build
    assert not loaded.module.training
    state, saved = loaded.module.state_dict(), model.module.state_dict()
    assert state.keys() == saved.keys()
    for key in state:
        torch.testing.assert_close(state[key], saved[key], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model.module.eval()(x), rtol=0, atol=0)


def test_zoo_model_round_trip_keeps_batch_norm_statistics(tmp_path: Path) -> None:
    model = load_model("residual", seed=3)
    with torch.no_grad():  # running statistics are buffers, not parameters: they must survive too
        for name, buffer in model.module.named_buffers():
            if name.endswith("running_mean"):
                buffer.uniform_(-0.5, 0.5)
    model.outputs_probabilities = True
    path = save_checkpoint(model, tmp_path / "residual.ckpt")
    loaded = load_model(str(path))
    assert loaded.class_names is not None and loaded.class_names[0] == "T-shirt/top"
    assert loaded.dataset == "fashion-mnist"
    _assert_same_model(loaded, model, torch.randn(4, 1, 28, 28))


def test_bgr_center_crop_spec_and_own_classes_survive(tmp_path: Path) -> None:
    model = load_model("torchvision:resnet18", seed=0)
    spec = InputSpec(
        channels=3,
        height=224,
        width=224,
        mean=(0.406, 0.456, 0.485),
        std=(0.225, 0.224, 0.229),
        resize=ResizePolicy.CENTER_CROP,
        resize_to=256,
        channel_order="BGR",
        extra={"trained_with": "caffe", "crop": [224, 224]},
    )
    model.input_spec = spec
    model.class_names = tuple(f"class {i}" for i in range(1000))
    model.outputs_probabilities = True
    model.dataset = None
    path = save_checkpoint(model, tmp_path / "bgr.ckpt", extra={"note": "hand-set spec"})
    loaded = load_checkpoint(path)
    assert loaded.input_spec.channel_order == "BGR"
    assert loaded.input_spec.resize is ResizePolicy.CENTER_CROP
    assert loaded.input_spec.resize_to == 256
    assert loaded.input_spec.mean == (0.406, 0.456, 0.485)
    assert loaded.input_spec.extra == {"trained_with": "caffe", "crop": [224, 224]}
    _assert_same_model(loaded, model, torch.randn(2, 3, 64, 64))
    # The loaded spec preprocesses exactly as the saved one: a pure red image in BGR order
    # puts the red value in the last channel.
    pixels = np.zeros((1, 224, 224, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    x = loaded.input_spec.normalize(pixels)
    torch.testing.assert_close(x, spec.normalize(pixels))
    assert float(x[0, 2, 0, 0]) == pytest.approx((1.0 - 0.485) / 0.229)
    assert float(x[0, 0, 0, 0]) == pytest.approx((0.0 - 0.406) / 0.225)


def test_checkpoint_of_a_model_without_class_names(tmp_path: Path) -> None:
    model = load_model("lenet5", seed=1)
    model.class_names = None
    loaded = load_model(str(save_checkpoint(model, tmp_path / "bare.ckpt")))
    assert loaded.class_names is None
    assert loaded.outputs_probabilities is False


def test_checkpoint_written_before_the_optional_fields_still_loads(tmp_path: Path) -> None:
    """An early checkpoint: no class names, output kind, dataset, extra or channel order."""
    model = load_model("lenet5", seed=2)
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "name": "lenet5",
        "build": {"source": "zoo", "name": "lenet5"},
        "state_dict": model.module.state_dict(),
        "input_spec": {"channels": 1, "height": 28, "width": 28, "mean": [0.5], "std": [0.25]},
    }
    path = tmp_path / "old.ckpt"
    torch.save(payload, path)
    loaded = load_model(str(path))
    assert loaded.input_spec == InputSpec(1, 28, 28, mean=(0.5,), std=(0.25,))
    assert loaded.input_spec.channel_order == "RGB"
    assert loaded.input_spec.resize is ResizePolicy.LETTERBOX
    assert loaded.class_names is None
    assert loaded.outputs_probabilities is False
    assert loaded.dataset is None
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(x), model.module(x), rtol=0, atol=0)


def test_checkpoint_without_an_input_spec_uses_the_recipes(tmp_path: Path) -> None:
    model = load_model("lenet5-classic", seed=2)
    payload = {
        "format": FORMAT,
        "format_version": 1,
        "build": {"source": "zoo", "name": "lenet5-classic"},
        "state_dict": model.module.state_dict(),
    }
    path = tmp_path / "nospec.ckpt"
    torch.save(payload, path)
    loaded = load_checkpoint(path)
    assert loaded.input_spec == model.input_spec
    assert loaded.name == "lenet5-classic"


def test_newer_format_is_refused_in_one_line(tmp_path: Path) -> None:
    model = load_model("lenet5")
    path = save_checkpoint(model, tmp_path / "new.ckpt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(ModelError, match="newer convscope") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
