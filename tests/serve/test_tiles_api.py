"""The tiles routes answer the probes' own numbers, readable back from their PNGs.

Feature tiles decoded with the JSON's ranges reproduce :func:`feature_maps` to within
one 255th of each map's range (min and max exactly); kernel tiles are the kernel grid's
display values (:func:`kernel_images` normalised); a repeated request and a JSON with
its PNG cost one computation (counted, not timed); a small model pool stays small.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import convscope
from convscope.probe.features import feature_maps, most_active
from convscope.serve import routes_tiles
from convscope.serve.state import ServeConfig
from tests.serve.conftest import error_of, get_json, make_client

MODEL, IMAGE = "lenet5", "mnist:test:0"
RESNET = "torchvision:resnet18"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from convscope.data.datasets import load_dataset

    load_dataset("mnist", "test")  # a request never downloads a dataset
    with make_client(ServeConfig(store=tmp_path_factory.mktemp("tiles") / "runs")) as test:
        yield test


@pytest.fixture(scope="module")
def lenet5() -> convscope.LoadedModel:
    return convscope.load_model(MODEL)


@pytest.fixture(scope="module")
def resnet() -> convscope.LoadedModel:
    return convscope.load_model(RESNET)


def png_of(client: TestClient, data: dict) -> np.ndarray:
    """The pixels of the PNG a tiles answer names (its relative ``png`` URL)."""
    assert not data["png"].startswith("/") and data["png"].startswith("api/models/")
    response = client.get(f"/{data['png']}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return np.asarray(image)


def tiles_of(pixels: np.ndarray, data: dict, count: int) -> np.ndarray:
    """The ``count`` tiles of a tile picture, laid out ``columns`` to a row."""
    h, w = data["tile"]
    columns = data["columns"]
    rows = -(-count // columns)
    assert pixels.shape[:2] == (rows * h, columns * w)
    return np.stack(
        [pixels[(i // columns) * h :][:h, (i % columns) * w :][:, :w] for i in range(count)]
    )


def decoded_maps(client: TestClient, data: dict) -> np.ndarray:
    """The maps a feature-tiles answer stands for: ``min + q / 255 * (max - min)``."""
    codes = tiles_of(png_of(client, data), data, len(data["channels"])).astype(np.float64)
    lo = np.asarray(data["map_min"])[:, None, None]
    hi = np.asarray(data["map_max"])[:, None, None]
    return lo + codes / 255 * (hi - lo)


def features_url(model: str, layer: str, image: str = IMAGE, **params: object) -> str:
    query = "".join(f"&{k}={v}" for k, v in params.items())
    return f"/api/models/{quote(model, safe='')}/features/tiles?layer={layer}&image={image}{query}"


def assert_reproduces(client: TestClient, data: dict, maps: np.ndarray) -> None:
    """The decoded tiles equal ``maps`` (``C x H x W``, all channels) within a step."""
    expected = maps[data["channels"]].astype(np.float64)
    if expected.ndim == 2:
        expected = expected[:, None, :]
    decoded = decoded_maps(client, data)
    step = (np.asarray(data["map_max"]) - np.asarray(data["map_min"]))[:, None, None] / 255
    assert np.all(np.abs(decoded - expected) <= step + 1e-6 * np.abs(expected).max())
    assert data["map_min"] == [float(m.min()) for m in maps[data["channels"]]]
    assert data["map_max"] == [float(m.max()) for m in maps[data["channels"]]]
    means = [float(m.astype(np.float64).mean()) for m in maps[data["channels"]]]
    assert np.allclose(data["map_mean"], means, rtol=1e-6, atol=1e-9)
    assert data["min"] == float(maps.min()) and data["max"] == float(maps.max())
    assert data["shape"] == list(maps.shape) and data["tile"] == list(expected.shape[1:])


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("layer", ["conv2d_1", "max_pooling2d_1", "conv2d_2"])
def test_feature_tiles_reproduce_the_feature_maps(client, lenet5, layer: str) -> None:
    maps = feature_maps(lenet5, IMAGE, [layer]).layer(layer).maps
    data = get_json(client, features_url(MODEL, layer))
    assert (
        data["layer"] == layer and data["type"] == type(lenet5.module.get_submodule(layer)).__name__
    )
    assert data["channels"] == list(range(maps.shape[0]))
    assert data["weights"] == lenet5.weights and data["input"] == IMAGE
    assert_reproduces(client, data, maps)
    assert (
        data["png"] == f"api/models/{MODEL}/features/tiles.png?layer={layer}&image=mnist%3Atest%3A0"
    )


def test_top_keeps_the_most_active_maps_in_order(client, lenet5) -> None:
    maps = feature_maps(lenet5, "mnist:test:3", ["conv2d_2"]).layer("conv2d_2").maps
    data = get_json(client, features_url(MODEL, "conv2d_2", "mnist:test:3", top=5))
    assert data["channels"] == [int(c) for c in most_active(maps, 5)]
    assert data["columns"] == 3 and "top=5" in data["png"]
    assert_reproduces(client, data, maps)
    everything = get_json(client, features_url(MODEL, "conv2d_2", "mnist:test:3", top=99))
    assert sorted(everything["channels"]) == list(range(16))


def test_a_vector_layer_answers_its_values_and_no_png(client, lenet5) -> None:
    output = feature_maps(lenet5, IMAGE, ["dense_1"]).layer("dense_1").maps
    data = get_json(client, features_url(MODEL, "dense_1"))
    assert data["shape"] == [120] and "png" not in data
    assert data["values"] == [float(v) for v in output]
    top = get_json(client, features_url(MODEL, "dense_1", top=3))
    assert top["channels"] == [int(c) for c in np.argsort(-output, kind="stable")[:3]]
    assert top["values"] == [float(output[c]) for c in top["channels"]]
    url = features_url(MODEL, "dense_1").replace("/tiles?", "/tiles.png?")
    assert "vector" in error_of(client, url)


def test_a_run_epoch_is_served_with_its_own_weights(tiny_store: Path, tiny_ids) -> None:
    run = tiny_ids["residual"]
    with make_client(ServeConfig(store=tiny_store)) as client:
        for epoch in (0, 2):
            model = convscope.load_model(f"run:{run}@{epoch}", store=tiny_store)
            maps = feature_maps(model, IMAGE, ["conv2D_1"]).layer("conv2D_1").maps
            data = get_json(client, features_url(f"run:{run[:6]}@{epoch}", "conv2D_1"))
            assert data["weights"] == model.weights
            assert_reproduces(client, data, maps)


def test_every_call_of_a_reused_relu_is_its_own(client, resnet) -> None:
    """torchvision's BasicBlock runs one in-place ReLU twice: each call's maps, as the probe
    gives them, whether the pass stops at the call or runs on to count the calls."""
    layer, image = "layer1.0.relu", "sample:chelsea"
    probe = {c: feature_maps(resnet, image, [layer], call=c).layer(layer) for c in (0, 1, -1)}
    assert probe[-1].calls == 2 and probe[-1].call == 1
    for call in (-1, 0, 1, -1):  # the last -1 stops at the call, knowing there are two
        data = get_json(client, features_url(RESNET, layer, image, call=call, top=8))
        assert data["call"] == probe[call].call
        assert_reproduces(client, data, probe[call].maps)
    assert not np.allclose(probe[0].maps, probe[1].maps)
    message = error_of(client, features_url(RESNET, layer, image, call=2))
    assert "ran 2 time(s)" in message


def test_an_rgb_image_of_a_224_model(client, resnet) -> None:
    maps = feature_maps(resnet, "sample:coffee", ["conv1"]).layer("conv1").maps
    data = get_json(client, features_url(RESNET, "conv1", "sample:coffee"))
    assert data["shape"] == [64, 112, 112] and data["columns"] == 8
    assert_reproduces(client, data, maps)


def test_an_upload_is_read_from_the_upload_store(client, lenet5) -> None:
    pixels = (np.arange(28 * 28).reshape(28, 28) % 251).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    spec = client.post("/api/images", content=buffer.getvalue()).json()["spec"]
    maps = feature_maps(lenet5, pixels, ["conv2d_1"]).layer("conv2d_1").maps
    data = get_json(client, features_url(MODEL, "conv2d_1", spec))
    assert_reproduces(client, data, maps)
    assert "no upload" in error_of(client, features_url(MODEL, "conv2d_1", "upload:abcdef"), 404)


@pytest.mark.parametrize(
    "spec", ["mnist:test:5", "mnist:test:3-9", "fashion-mnist:test:2", "sample:coffee"]
)
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_a_cached_picture_is_what_the_slow_path_reads(client, spec: str, channels) -> None:
    from convscope.data.datasets import load_dataset
    from convscope.data.preprocess import InputSpec
    from convscope.serve import images

    load_dataset("fashion-mnist", "test")
    state = client.app.state.convscope
    input_spec = None if channels is None else InputSpec(channels, 28, 28)
    fast = routes_tiles.picture_of(state, spec, input_spec)
    slow = images.resolve_image(spec, state.uploads, input_spec)
    assert (fast.name, fast.label, fast.label_name) == (slow.name, slow.label, slow.label_name)
    assert fast.pixels.dtype == slow.pixels.dtype and np.array_equal(fast.pixels, slow.pixels)
    assert routes_tiles.picture_of(state, spec, input_spec) is fast  # kept


# --------------------------------------------------------------------------- kernels


def kernel_url(model: str, layer: str, **params: object) -> str:
    query = "".join(f"&{k}={v}" for k, v in params.items())
    return f"/api/models/{quote(model, safe='')}/kernels/tiles?layer={layer}{query}"


def kernel_grid_of(model: convscope.LoadedModel, layer: str, **options: object):
    from convscope.probe.kernels import kernel_set

    bgr = options.pop("bgr", False)
    kernels = kernel_set(model, layer, channel_order="BGR" if bgr else None)
    return kernels, kernels.grid(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "layer", "params", "options"),
    [
        (MODEL, "conv2d_1", {}, {}),
        (MODEL, "conv2d_1", {"norm": "layer"}, {"norm": "layer"}),
        (MODEL, "conv2d_1", {"norm": "diverging"}, {"norm": "diverging"}),
        (MODEL, "conv2d_2", {}, {}),
        (MODEL, "conv2d_2", {"reduce": "mean", "norm": "diverging"},
         {"reduce": "mean", "norm": "diverging"}),
        (MODEL, "conv2d_2", {"reduce": "none"}, {"per_channel": True}),
        (MODEL, "conv2d_2", {"per_channel": "true", "limit": 3}, {"per_channel": True, "limit": 3}),
        (RESNET, "conv1", {}, {}),
        (RESNET, "conv1", {"bgr": "true", "norm": "diverging"}, {"bgr": True, "norm": "diverging"}),
        (RESNET, "conv1", {"per_channel": "true", "limit": 4}, {"per_channel": True, "limit": 4}),
    ],
)  # fmt: skip
def test_kernel_tiles_are_the_kernel_grid(
    client, lenet5, resnet, model: str, layer: str, params: dict, options: dict
) -> None:
    loaded = lenet5 if model == MODEL else resnet
    kernels, grid = kernel_grid_of(loaded, layer, **options)
    data = get_json(client, kernel_url(model, layer, **params))
    assert data["layer"] == layer and data["type"] == kernels.layer_type
    assert data["shape"] == list(kernels.weights.shape)
    assert data["normalization"] == grid.normalization and data["rgb"] is grid.colour
    assert data["channel_order"] == grid.channel_order and data["shown"] == grid.shown
    assert data["grid"] == [grid.rows, grid.cols] and data["columns"] == grid.cols
    assert data["tile"] == list(grid.tiles.shape[1:3]) and data["caption"] == grid.caption
    assert data["diverging"] is (grid.normalization == "diverging")
    assert data["range"] == (None if grid.scale is None else list(grid.scale))
    assert data["health"] == kernels.health().to_dict() and data["nonfinite"] == []
    pixels = png_of(client, data)
    assert pixels.ndim == (3 if grid.colour else 2)
    codes = tiles_of(pixels, data, len(grid.tiles)).astype(np.float64) / 255
    display = grid.tiles
    if grid.normalization == "diverging" and not grid.colour:
        display = (display + 1) / 2
    assert np.all(np.abs(codes - display) <= 0.5 / 255 + 1e-6)
    if data["range"] is not None:  # black and white in weight units
        lo, hi = data["range"]
        if grid.normalization == "layer":
            from convscope.probe.kernels import kernel_images

            images = kernel_images(
                kernels.weights, kernels.channel_order, reduce=grid.reduce, per_channel=False
            )
            flat = images.reshape(len(grid.tiles), *grid.tiles.shape[1:])
            assert np.all(np.abs(lo + codes * (hi - lo) - flat) <= (hi - lo) / 255)


def test_bgr_reverses_the_colour_channels(client, resnet) -> None:
    plain = png_of(client, get_json(client, kernel_url(RESNET, "conv1")))
    bgr = png_of(client, get_json(client, kernel_url(RESNET, "conv1", bgr="true")))
    assert np.array_equal(plain[..., ::-1], bgr)


# --------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        (features_url(MODEL, "conv2d_9"), 400, "did you mean conv2d_2, conv2d_1"),
        (features_url(MODEL, "conv2d_1", top=0), 400, "top must be at least 1"),
        (features_url(MODEL, "conv2d_1", top=-2).replace("/tiles?", "/tiles.png?"), 400, "top"),
        (features_url(MODEL, "conv2d_1", "nodata:test:0"), 400, "nodata"),
        (features_url(MODEL, "conv2d_1", "../x.png"), 400, "upload:ID"),
        (features_url(MODEL, "conv2d_1", call=3), 400, "ran 1 time(s)"),
        (features_url("lenet55", "conv2d_1"), 404, "did you mean lenet5"),
        (f"/api/models/{MODEL}/features/tiles?layer=conv2d_1", 400, "image"),
        (kernel_url(MODEL, "dense_1"), 400, "conv layers: conv2d_1, conv2d_2"),
        (kernel_url(MODEL, "conv2d_3"), 400, "did you mean conv2d_2, conv2d_1"),
        (kernel_url(MODEL, "conv2d_1", norm="loud"), 400, "unknown normalisation 'loud'"),
        (kernel_url(MODEL, "conv2d_1", reduce="max"), 400, "mean, norm, none"),
        (kernel_url(MODEL, "conv2d_1", bgr="true"), 400, "needs three"),
        (kernel_url(MODEL, "conv2d_1", limit=0), 400, "limit"),
        (kernel_url(MODEL, "dense_1").replace("/tiles?", "/tiles.png?"), 400, "conv layers"),
        (kernel_url("run:nosuch", "conv2d_1"), 404, "no run"),
    ],
)
def test_mistakes_are_one_line_4xx(client, url: str, status: int, says: str) -> None:
    assert says in error_of(client, url, status)


def test_a_vector_of_more_than_4096_values_asks_for_top() -> None:
    from convscope.errors import ConvscopeError
    from convscope.serve.tiles import feature_tiles

    with pytest.raises(ConvscopeError, match="top=K"):
        feature_tiles(np.zeros(5000, dtype=np.float32))
    assert feature_tiles(np.arange(5000, dtype=np.float32), top=2).meta["channels"] == [4999, 4998]


def test_nonfinite_maps_are_listed_and_json_stays_valid() -> None:
    from convscope.serve.tiles import feature_tiles

    maps = np.ones((3, 2, 2), dtype=np.float32)
    maps[1, 0, 0], maps[2] = np.nan, np.inf
    tiles = feature_tiles(maps)
    assert tiles.meta["nonfinite"] == [1, 2]
    assert tiles.meta["map_mean"] == [1.0, 1.0, None] and tiles.meta["map_min"][2] == 0.0
    assert tiles.meta["min"] == 1.0 and tiles.meta["max"] == 1.0


# --------------------------------------------------------------------------- the cache


def test_json_png_and_a_repeat_cost_one_forward_pass(client, monkeypatch) -> None:
    passes: list[str] = []
    real = routes_tiles.layer_maps

    def counted(*args, **kwargs):
        passes.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(routes_tiles, "layer_maps", counted)
    cache = client.app.state.convscope.cache
    url = features_url(MODEL, "conv2d_2", "mnist:test:11")
    data = get_json(client, url)
    misses = cache.misses
    hits = cache.hits
    png_of(client, data)
    assert get_json(client, url) == data
    png_of(client, data)
    assert passes == ["conv2d_2"]
    assert cache.misses == misses and cache.hits >= hits + 3
    get_json(client, features_url(MODEL, "conv2d_2", "mnist:test:11", top=2))
    assert passes == ["conv2d_2"]  # another top: other tiles, the same maps


def test_two_spellings_of_a_run_share_one_entry(tiny_store: Path, tiny_ids) -> None:
    run = tiny_ids["sequential"]
    with make_client(ServeConfig(store=tiny_store)) as client:
        cache = client.app.state.convscope.cache
        first = get_json(client, kernel_url(f"run:{run}@1", "conv2D_1"))
        misses = cache.misses
        second = get_json(client, kernel_url(f"run:{run[:6]}@1", "conv2D_1"))
        assert cache.misses == misses
        assert {k: v for k, v in first.items() if k != "png"} == {
            k: v for k, v in second.items() if k != "png"
        }
        other = get_json(client, kernel_url(f"run:{run}@2", "conv2D_1"))
        assert other["weights"] != first["weights"] and cache.misses > misses


def test_a_model_file_changed_on_disk_is_loaded_again(tmp_path: Path) -> None:
    path = tmp_path / "net.ckpt"
    convscope.save_checkpoint(convscope.load_model(MODEL, seed=1), path)
    with make_client(ServeConfig(store=tmp_path / "runs", models=(str(path),))) as client:
        before = get_json(client, kernel_url("net.ckpt", "conv2d_1", norm="layer"))
        assert get_json(client, kernel_url("net.ckpt", "conv2d_1", norm="layer")) == before
        changed = convscope.load_model(MODEL, seed=2)
        convscope.save_checkpoint(changed, path)
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        after = get_json(client, kernel_url("net.ckpt", "conv2d_1", norm="layer"))
        expected = convscope.kernels(changed, "conv2d_1").grid("layer")
        assert after["range"] == list(expected.scale) != before["range"]


def test_a_small_pool_never_holds_more_than_its_bound(tmp_path: Path) -> None:
    config = ServeConfig(store=tmp_path / "runs", max_models=2, cache_mb=1)
    names = {"lenet5": "conv2d_1", "lenet": "conv2d_1", "sequential": "conv2D_1",
             "lenet5-classic": "C1"}  # fmt: skip
    with make_client(config) as client:
        state = client.app.state.convscope
        for round_ in range(2):  # the second round reloads what the pool let go
            for name, layer in names.items():
                model = convscope.load_model(name)
                image = "fashion-mnist:test:1" if name == "sequential" else IMAGE
                maps = feature_maps(model, image, [layer]).layer(layer).maps
                data = get_json(client, features_url(name, layer, image, top=4))
                assert_reproduces(client, data, maps)
                assert len(state.models) <= 2, round_
                assert state.cache.nbytes <= 1024**2
        assert len(state.models) == 2 and "lenet5-classic" in state.models
