"""Dataset examples (``convscope.top_activations``): the images that move a channel most, least.

Every ranking is checked against a direct computation on real MNIST / Fashion-MNIST
images: the layer's output caught with a forward hook on one batch of every image, its
channel means over the positions, and ``np.argsort``. Random-init weights are enough,
the statistic does not care what was learned. Runs are small real trainings.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import convscope
from convscope.data.datasets import load_dataset
from convscope.data.spec import resolve_images, to_batch
from convscope.errors import ConvscopeError, LayerError
from convscope.probe.examples import TopActivations, example_images, top_activations
from convscope.render.examples import example_notes

SPEC = "mnist:test:0-300"


@pytest.fixture(scope="module")
def lenet5() -> convscope.LoadedModel:
    return convscope.load_model("lenet5")


def direct_means(model: convscope.LoadedModel, layer: str, batch: torch.Tensor) -> np.ndarray:
    """``N x C`` channel means of ``layer`` for ``batch``, in one forward pass with a hook."""
    module = dict(model.module.named_modules())[layer]
    caught: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: caught.append(out.detach().clone()))
    try:
        with torch.no_grad():
            model.module.eval()(batch)
    finally:
        handle.remove()
    out = caught[-1].numpy().astype(np.float64)
    return out.reshape(*out.shape[:2], -1).mean(axis=2) if out.ndim > 2 else out


def spec_batch(model: convscope.LoadedModel, spec: str) -> tuple[torch.Tensor, list[str]]:
    images = resolve_images(spec, input_spec=model.input_spec)
    return to_batch(images, model.input_spec), [im.name for im in images]


def assert_same_document(got: dict, expected: dict) -> None:
    """Two ``to_dict()`` documents equal, their activations to float32 precision."""

    def plain(data: dict) -> dict:
        return {**data, "top": [e["spec"] for e in data["top"]],
                "bottom": [e["spec"] for e in data["bottom"]]}  # fmt: skip

    assert plain(got) == plain(expected)
    for end in ("top", "bottom"):
        for a, b in zip(got[end], expected[end], strict=True):
            assert a["activation"] == pytest.approx(b["activation"], rel=1e-5, abs=1e-7)
            assert (a["label"], a["class"]) == (b["label"], b["class"])


def ranked(values: np.ndarray, k: int) -> tuple[list[int], list[int]]:
    return (
        np.argsort(-values, kind="stable")[:k].tolist(),
        np.argsort(values, kind="stable")[:k].tolist(),
    )


@pytest.mark.parametrize(
    ("layer", "channel"), [("conv2d_2", 5), ("max_pooling2d_1", 2), ("dense_2", 40)]
)
def test_top_and_bottom_equal_a_direct_computation(lenet5, layer, channel) -> None:
    result = top_activations(lenet5, layer, SPEC, 7, channel=channel, batch_size=64)
    batch, names = spec_batch(lenet5, SPEC)
    values = direct_means(lenet5, layer, batch)[:, channel]
    top, bottom = ranked(values, 7)
    assert [e.spec for e in result.top] == [names[i] for i in top]
    assert [e.spec for e in result.bottom] == [names[i] for i in bottom]
    assert [e.activation for e in result.top] == pytest.approx(values[top], rel=1e-5, abs=1e-7)
    assert [e.activation for e in result.bottom] == pytest.approx(
        values[bottom], rel=1e-5, abs=1e-7
    )
    np.testing.assert_allclose(result.activations, values, rtol=1e-5, atol=1e-7)
    labels = load_dataset("mnist", "test").labels[:300]
    assert [e.label for e in result.top] == labels[top].tolist()
    assert [e.class_name for e in result.top] == [str(v) for v in labels[top]]
    assert result.vector == (layer == "dense_2")


def test_batch_sizes_give_identical_results(lenet5) -> None:
    results = [
        top_activations(lenet5, "conv2d_1", SPEC, 9, batch_size=size) for size in (1, 37, 300, 1024)
    ]
    first = results[0].to_dict()
    for other in results[1:]:
        np.testing.assert_allclose(other.values, results[0].values, rtol=1e-5, atol=1e-7)
        for channel in range(6):
            a, b = results[0].select(channel).to_dict(), other.select(channel).to_dict()
            assert [e["spec"] for e in a["top"]] == [e["spec"] for e in b["top"]]
            assert [e["spec"] for e in a["bottom"]] == [e["spec"] for e in b["bottom"]]
    assert first["count"] == 300


def test_every_channel_kept_answers_for_any_channel(lenet5) -> None:
    every = top_activations(lenet5, "conv2d_2", SPEC, 5)
    assert every.channel == 0 and every.channels == tuple(range(16))
    assert every.values.shape == (300, 16)
    for channel in (0, 7, 15):
        alone = top_activations(lenet5, "conv2d_2", SPEC, 4, channel=channel)
        assert alone.values.shape == (300, 1)
        assert_same_document(every.select(channel, 4).to_dict(), alone.to_dict())
    with pytest.raises(ConvscopeError, match="computed for channel 15 only"):
        alone.select(3)


def test_a_fashion_model_ranks_its_default_sample() -> None:
    model = convscope.load_model("residual")
    images = example_images(model)
    assert images.spec == "stratified sample of fashion-mnist" and len(images) == 500
    test = load_dataset("fashion-mnist", "test")
    indices = [int(name.rsplit(":", 1)[1]) for name in images.names()]
    assert indices == sorted(indices) and all(
        n.startswith("fashion-mnist:test:") for n in images.names()
    )
    assert np.bincount(test.labels[indices]).tolist() == [50] * 10  # stratified
    np.testing.assert_array_equal(images.pixels(0, 500), test.images[indices])
    result = top_activations(model, "conv2D_1", k=6, channel=3)
    assert result.images == "stratified sample of fashion-mnist" and result.count == 500
    values = direct_means(model, "conv2D_1", images.batch(0, 500, model.input_spec))[:, 3]
    top, bottom = ranked(values, 6)
    assert [e.spec for e in result.top] == [images.names()[i] for i in top]
    assert [e.spec for e in result.bottom] == [images.names()[i] for i in bottom]
    assert {e.class_name for e in result.top} <= set(test.class_names)


def test_to_dict_has_the_contract_keys_sorted_and_ties_by_index() -> None:
    dead = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with torch.no_grad():
        dead[0].bias.copy_(torch.tensor([-100.0, 0.0]))  # channel 0 is 0 for every image
    result = top_activations(dead, "1", "mnist:test:0-40", 4, input_shape=(1, 28, 28))
    data = result.to_dict()
    assert list(data) == ["model", "weights", "layer", "channel", "images", "count", "statistic",
                          "top", "bottom"]  # fmt: skip
    assert data["statistic"] == "mean" and data["count"] == 40 and data["channel"] == 0
    assert all(list(e) == ["spec", "label", "class", "activation"] for e in data["top"])
    assert result.constant
    assert [e["spec"] for e in data["top"]] == [f"mnist:test:{i}" for i in range(4)]
    assert [e["spec"] for e in data["bottom"]] == [f"mnist:test:{i}" for i in range(4)]
    live = top_activations(dead, "1", "mnist:test:0-40", 4, channel=1, input_shape=(1, 28, 28))
    tops = [e["activation"] for e in live.to_dict()["top"]]
    bottoms = [e["activation"] for e in live.to_dict()["bottom"]]
    assert tops == sorted(tops, reverse=True) and bottoms == sorted(bottoms)
    assert tops[-1] >= bottoms[-1] and not live.constant


def test_a_preprocessed_tensor_and_pixels_give_the_same_values(lenet5) -> None:
    batch, _ = spec_batch(lenet5, "mnist:test:0-50")
    from_spec = top_activations(lenet5, "conv2d_1", "mnist:test:0-50", 3, channel=2)
    from_tensor = top_activations(lenet5, "conv2d_1", batch, 3, channel=2, batch_size=16)
    pixels = load_dataset("mnist", "test").images[:50]
    from_pixels = top_activations(lenet5, "conv2d_1", pixels, 3, channel=2)
    np.testing.assert_allclose(from_tensor.values, from_spec.values, rtol=1e-6)
    np.testing.assert_allclose(from_pixels.values, from_spec.values, rtol=1e-6)
    assert from_tensor.top[0].spec == f"input[{from_spec.top[0].index}]"
    assert from_tensor.top[0].pixels.shape == (28, 28)  # the tensor, stretched to be seen


def test_mistakes_are_one_line_errors(lenet5) -> None:
    with pytest.raises(LayerError, match=r"no layer 'conv2d_3'; did you mean conv2d_2, conv2d_1"):
        top_activations(lenet5, "conv2d_3", SPEC, channel=0)
    with pytest.raises(
        ConvscopeError,
        match=r"channel 16 is out of range: .* 16 channels, so the channel must be 0-15",
    ):
        top_activations(lenet5, "conv2d_2", SPEC, channel=16)
    with pytest.raises(ConvscopeError, match=r"120 units, so the channel must be 0-119"):
        top_activations(lenet5, "dense_1", SPEC, channel=120)
    with pytest.raises(ConvscopeError, match="top must be a whole number of at least 1"):
        top_activations(lenet5, "conv2d_2", SPEC, 0)
    bare = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ConvscopeError, match="no default image set; give the images with --image"):
        top_activations(bare, "0", input_shape=(1, 28, 28))
    with pytest.raises(
        ConvscopeError,
        match=r"no default image set for torchvision:resnet18 \(unknown dataset .imagenet",
    ):
        example_images("torchvision:resnet18")


def test_hooks_are_removed_and_the_mode_restored_after_an_error(lenet5) -> None:
    def stop(_what: str, done: int, _total: int) -> None:
        if done >= 64:
            raise KeyboardInterrupt

    lenet5.module.train()
    with pytest.raises(KeyboardInterrupt):
        top_activations(lenet5, "conv2d_2", SPEC, batch_size=32, progress=stop)
    assert lenet5.module.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in lenet5.module.modules())
    lenet5.module.eval()


def test_progress_is_said_per_batch(lenet5) -> None:
    seen: list[tuple[str, int, int]] = []
    top_activations(lenet5, "conv2d_1", SPEC, batch_size=128, progress=lambda *a: seen.append(a))
    assert seen == [("examples", 128, 300), ("examples", 256, 300), ("examples", 300, 300)]


def test_the_figure_draws_both_rows(lenet5, tmp_path: Path) -> None:
    result = top_activations(lenet5, "conv2d_2", SPEC, 9, channel=5)
    assert isinstance(result, TopActivations)
    assert result.top[0].pixels.shape == (28, 28) and result.top[0].pixels.dtype == np.uint8
    path = Path(result.save(str(tmp_path / "examples.png")))
    with Image.open(path) as image:
        width, height = image.size
    assert width > 900 and 350 < height < width  # nine across, two rows
    png = result._repr_png_()
    assert Image.open(io.BytesIO(png)).size == (width, height)
    figure = result.figure()
    texts = [block._suptitle.get_text() for block in figure.subfigs]
    assert texts[0].startswith("most active (9 of 300") and texts[1].startswith("least active")
    title = figure._suptitle.get_text()
    assert "layer conv2d_2" in title and "channel 5" in title and "untrained" in title


def relu_of_input() -> nn.Sequential:
    """A 1x1 convolution passing its input through a ReLU: an image's value is its mean,
    cut at 0."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.ReLU())
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
    return model


def test_one_image_is_nothing_to_rank_not_an_inactive_channel(lenet5) -> None:
    result = top_activations(lenet5, "conv2d_1", "mnist:test:0", 3, channel=0)
    assert result.count == 1 and result.activations[0] != 0
    assert not result.constant and result.overlapping
    assert [e.spec for e in result.ranked] == ["mnist:test:0"]
    assert example_notes(result) == [
        "1 image: nothing to rank; give a range such as mnist:test:0-500"
    ]
    figure = result.figure()
    assert [block._suptitle.get_text() for block in figure.subfigs] == ["the only image"]
    title = figure._suptitle.get_text()
    assert "over 1 image (mnist:test:0)" in title and "1 images" not in title
    assert "1 image: nothing to rank" in title and "not active" not in title


def test_a_constant_channel_says_not_active_only_at_zero() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([-1.0, 0.5]))  # channel 0 is 0, channel 1 is 0.5
    result = top_activations(model, "1", "mnist:test:0-40", 4, input_shape=(1, 28, 28))
    zero, half = result, result.select(1)
    assert zero.constant and half.constant
    assert example_notes(zero) == [
        "every image gives 0: the channel is not active on this set (shown in set order)"
    ]
    assert example_notes(half) == [
        "the channel gives 0.5, the same for every image: nothing to rank (shown in set order)"
    ]
    assert "not active" not in half.figure()._suptitle.get_text()
    assert "the same for every image" in half.figure()._suptitle.get_text()


def test_a_set_smaller_than_both_ends_is_shown_once_most_to_least(lenet5) -> None:
    for k, fewer in ((9, ""), (5, ""), (3, ", too few for 3 at each end")):
        result = top_activations(lenet5, "conv2d_1", "mnist:test:0-5", k, channel=0)
        assert result.overlapping and len(result.top) == len(result.bottom) == min(k, 5)
        values = [e.activation for e in result.ranked]
        assert len(result.ranked) == 5 and values == sorted(values, reverse=True)
        assert {e.spec for e in result.ranked} == {f"mnist:test:{i}" for i in range(5)}
        assert example_notes(result) == [
            f"the set has 5 images{fewer}: all 5 shown once, most to least active"
        ]
        figure = result.figure()
        labels = [block._suptitle.get_text() for block in figure.subfigs]
        assert labels == ["all 5 images, most to least active"]
        assert example_notes(result)[0] in figure._suptitle.get_text()
        assert len([ax for ax in figure.subfigs[0].axes if ax.images]) == 5  # each image once
    two = top_activations(lenet5, "conv2d_1", "mnist:test:0-5", 2, channel=0)
    assert not two.overlapping and example_notes(two) == []
    assert not {e.spec for e in two.top} & {e.spec for e in two.bottom}


def test_an_end_cut_inside_a_tie_says_how_many_tie() -> None:
    pixels = -torch.ones(50, 1, 8, 8)
    pixels[17] = 2.0  # 49 of the 50 images give 0, image 17 gives 2
    result = top_activations(relu_of_input(), "1", pixels, 9)
    assert [e.index for e in result.bottom] == list(range(9))  # set order among the tied
    assert [e.index for e in result.top] == [17, *range(8)]
    assert result.tie("bottom") == (0.0, 49) and result.tie("top") == (0.0, 49)
    assert example_notes(result) == [
        "most active: 49 images tie at 0 (shown in set order)",
        "least active: 49 images tie at 0 (shown in set order)",
    ]
    title = result.figure()._suptitle.get_text()
    assert "least active: 49 images tie at 0 (shown in set order)" in title
    few = pixels.clone()
    few[:47] = torch.linspace(1, 3, 47).view(47, 1, 1, 1)  # 3 zeros, all within the bottom 9
    free = top_activations(relu_of_input(), "1", few, 9)
    assert free.tie("bottom") is None and free.tie("top") is None
    assert example_notes(free) == []


# --------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two one-epoch lenet5 runs on MNIST: one on a 200-image subset (its probe set from
    the training split), one validated on the test split (its probe set from there)."""
    from convscope.store import open_store
    from convscope.train.loop import TrainConfig
    from convscope.train.run import RunSettings, train_run

    root = tmp_path_factory.mktemp("example-runs") / "runs"
    ids = {}
    with open_store(root) as store:
        for name, extra in (("subset", {}), ("validated", {"validation": "test"})):
            settings = RunSettings(model="lenet5", data="mnist", subset=200, probe_per_class=3,
                                   config=TrainConfig(epochs=1, batch_size=100, seed=1),
                                   name=name, **extra)  # fmt: skip
            ids[name] = train_run(settings, store=store).run_id
    return root, ids


@pytest.mark.slow  # trains two small runs
@pytest.mark.parametrize("name", ["subset", "validated"])
def test_a_run_ranks_its_probe_set_named_by_dataset_index(runs, name) -> None:
    from convscope.store import open_store
    from convscope.train.run import probe_images

    root, ids = runs
    run_id = ids[name]
    with open_store(root, create=False) as store:
        record = store.run(run_id)
        expected = probe_images(store, record)
        labels = store.run_array(run_id, "probe", "labels")
    images = example_images(f"run:{run_id}@1", root)
    assert images.spec == f"probe set of run {run_id}" and len(images) == 30
    split = "train" if name == "subset" else "test"
    data = load_dataset("mnist", split)
    indices = []
    for spec in images.names():
        dataset, got_split, index = spec.split(":")
        assert (dataset, got_split) == ("mnist", split)
        indices.append(int(index))
    np.testing.assert_array_equal(data.images[indices], expected)  # the images the run saw
    np.testing.assert_array_equal(images.labels, labels)
    result = top_activations(f"run:{run_id}", "conv2d_2", k=5, channel=1, store=root)
    assert result.images == f"probe set of run {run_id}" and result.count == 30
    assert result.model_weights == f"run {run_id} epoch 1"
    model = convscope.load_model(f"run:{run_id}", store=root)
    values = direct_means(model, "conv2d_2", images.batch(0, 30, model.input_spec))[:, 1]
    top, bottom = ranked(values, 5)
    assert [e.spec for e in result.top] == [images.names()[i] for i in top]
    assert [e.spec for e in result.bottom] == [images.names()[i] for i in bottom]
    # A model loaded from the run finds the same set by itself.
    assert example_images(model, root).names() == images.names()
