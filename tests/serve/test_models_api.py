"""The model routes answer what the library (and so the CLI's --json) answers.

Every JSON answer is compared with the ``to_dict()`` of the same library call on
``lenet5`` (random init, seed 0: no training) and ``mnist:test:0``; pictures must decode
and not be blank; every user's mistake is a 4xx ``{"error": "one line"}``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

import convscope
from convscope.serve.app import create_app
from convscope.serve.state import ServeConfig
from tests.serve.conftest import error_of, get_json

MODEL, IMAGE, LAYER = "lenet5", "mnist:test:0", "conv2d_1"


@pytest.fixture(scope="module")
def lenet5() -> convscope.LoadedModel:
    return convscope.load_model(MODEL)


@pytest.fixture(scope="module")
def given_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lenet5 checkpoint file, the kind of model only ``--model`` may name."""
    path = tmp_path_factory.mktemp("given") / "net.ckpt"
    convscope.save_checkpoint(convscope.load_model(MODEL, seed=7), path)
    return path


@pytest.fixture(scope="module")
def nan_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint whose first kernel holds NaN (a diverged training)."""
    model = convscope.load_model(MODEL)
    with torch.no_grad():
        next(model.module.parameters()).view(-1)[0] = float("nan")
    path = tmp_path_factory.mktemp("nan") / "nan.ckpt"
    convscope.save_checkpoint(model, path)
    return path


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, given_checkpoint: Path, nan_checkpoint: Path
) -> Iterator[TestClient]:
    store = tmp_path_factory.mktemp("serve") / "runs"
    config = ServeConfig(store=store, models=(str(given_checkpoint), str(nan_checkpoint)))
    with TestClient(create_app(config), base_url="http://127.0.0.1") as test_client:
        yield test_client


def png_pixels(response) -> np.ndarray:
    """The pixels of a PNG answer (which must be one)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def assert_not_blank(pixels: np.ndarray) -> None:
    assert pixels.shape[0] > 20 and pixels.shape[1] > 20
    assert pixels.std() > 5 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10


def test_models_lists_the_zoo_as_the_cli_and_the_given_models(client: TestClient) -> None:
    from convscope.models.registry import zoo_records

    data, zoo = get_json(client, "/api/models"), zoo_records()
    assert data[: len(zoo)] == zoo
    lenet5 = next(record for record in data if record["name"] == MODEL)
    assert lenet5["params"] == 44426 and lenet5["input_shape"] == [1, 28, 28]
    given = data[len(zoo) :]
    assert given[0]["params"] == 44426 and "--model" in given[0]["description"]
    assert "NaN" in given[1]["error"] and given[1]["params"] is None
    assert client.get("/api/models").json() == data  # kept after the first call


def test_layers_and_summary_equal_the_library(client: TestClient, lenet5) -> None:
    summary = convscope.summary(lenet5, depth=64)
    expected = [
        {"name": r.name, "type": r.type, "output_shape": r.output_shape, "params": r.params}
        for r in summary.layers
    ]
    assert get_json(client, f"/api/models/{MODEL}/layers") == expected
    assert get_json(client, f"/api/models/{MODEL}/summary") == convscope.summary(lenet5).to_dict()


def test_graph_is_the_diagram_graph(client: TestClient, lenet5) -> None:
    data = get_json(client, f"/api/models/{MODEL}/graph")
    assert data == convscope.diagram(lenet5).to_dict()
    names = {node["name"] for node in data["nodes"]}
    assert {"conv2d_1", "dense_3"} <= names and len(data["edges"]) >= len(data["nodes"]) - 1
    svg = client.get(f"/api/models/{MODEL}/graph.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"conv2d_1" in svg.content


def test_kernels_equal_the_library_with_health(client: TestClient, lenet5) -> None:
    kernels = convscope.kernels(lenet5, LAYER)
    expected = kernels.grid().to_dict() | {
        "type": kernels.layer_type,
        "nonfinite": [],
        "health": kernels.health().to_dict(),
    }
    data = get_json(client, f"/api/models/{MODEL}/kernels?layer={LAYER}")
    assert data == expected and data["shape"] == [6, 1, 5, 5]
    assert data["health"]["summary"]["kernels"] == 6
    layer_norm = get_json(client, f"/api/models/{MODEL}/kernels?layer={LAYER}&norm=layer")
    assert layer_norm["normalization"] == "layer" and layer_norm["scale"] is not None
    assert_not_blank(png_pixels(client.get(f"/api/models/{MODEL}/kernels.png?layer={LAYER}")))


def test_features_equal_the_library(client: TestClient, lenet5) -> None:
    expected = convscope.feature_maps(lenet5, IMAGE, [LAYER]).to_dict()
    data = get_json(client, f"/api/models/{MODEL}/features?layer={LAYER}&image={IMAGE}")
    layer = expected["layers"][0]
    assert data["layer"] == LAYER and data["shape"] == layer["shape"] == [1, 6, 24, 24]
    assert (data["min"], data["max"]) == (layer["min"], layer["max"])
    assert {key: data[key] for key in expected} == expected
    url = f"/api/models/{MODEL}/features.png?layer={LAYER}&image={IMAGE}"
    assert_not_blank(png_pixels(client.get(url)))


def test_explain_equals_the_library(client: TestClient, lenet5) -> None:
    expected = convscope.explain(lenet5, LAYER, IMAGE, (10, 12), channel=2).to_dict()
    url = f"/api/models/{MODEL}/explain?layer={LAYER}&image={IMAGE}&at=10,12&channel=2"
    assert get_json(client, url) == expected
    pool = f"/api/models/{MODEL}/explain?layer=max_pooling2d_1&image={IMAGE}&at=5,6"
    assert get_json(client, pool)["kind"] == "maxpool"
    assert_not_blank(png_pixels(client.get(url.replace("/explain?", "/explain.png?"))))


def test_attribute_equals_the_library(client: TestClient, lenet5) -> None:
    expected = convscope.attribute(lenet5, IMAGE, "saliency,gradcam", target=7).to_dict()
    url = f"/api/models/{MODEL}/attribute?image={IMAGE}&method=saliency,gradcam&target=7"
    assert get_json(client, url) == expected
    assert_not_blank(png_pixels(client.get(url.replace("/attribute?", "/attribute.png?"))))


def test_a_model_given_with_model_is_served_by_its_file_name(
    client: TestClient, given_checkpoint: Path
) -> None:
    data = get_json(client, f"/api/models/{given_checkpoint.name}/kernels?layer={LAYER}")
    reference = convscope.kernels(convscope.load_model(str(given_checkpoint)), LAYER)
    assert data["health"] == reference.health().to_dict()
    assert data["weights"] == reference.model_weights
    assert "never names a file" in error_of(client, "/api/models/other.ckpt/layers", 400)


def test_nan_weights_are_a_user_error(client: TestClient, nan_checkpoint: Path) -> None:
    message = error_of(client, f"/api/models/{nan_checkpoint.name}/layers", 400)
    assert "NaN or infinity" in message


@pytest.mark.parametrize(
    "model",
    ["model.ckpt", "net.pt", "w.pth", "m.keras", "m.h5", "net.py", "net.py:build", ".hidden",
     "~root", "run:..x", "x..y", "%2E%2E", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%5Cb"],
)  # fmt: skip
def test_a_model_that_looks_like_a_path_is_refused(client: TestClient, model: str) -> None:
    message = error_of(client, f"/api/models/{model}/layers", 400)
    if "%" not in model:  # encoded dots and slashes are refused before any route
        assert message.startswith("a request never names a file")


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/api/models/lenet55/layers", 404, "did you mean lenet5"),
        ("/api/models/README/layers", 404, "unknown model 'README'"),
        ("/api/models/run:nosuch/layers", 404, "no run store"),
        ("/api/models/timm:no_such_net/layers", 404, ""),
        (f"/api/models/{MODEL}/kernels?layer=conv2d_9", 400, "did you mean conv2d_2, conv2d_1"),
        (f"/api/models/{MODEL}/kernels?layer=dense_1", 400, "conv"),
        (f"/api/models/{MODEL}/kernels", 400, "layer"),
        (f"/api/models/{MODEL}/kernels?layer={LAYER}&norm=loud", 400, "loud"),
        (f"/api/models/{MODEL}/kernels?layer={LAYER}&limit=x", 400, "limit"),
        (f"/api/models/{MODEL}/features?layer=nope&image={IMAGE}", 400, "no layer 'nope'"),
        (f"/api/models/{MODEL}/features?layer={LAYER}", 400, "image"),
        (f"/api/models/{MODEL}/features?layer={LAYER}&image=mnist:test:99999", 400, "range"),
        (f"/api/models/{MODEL}/features?layer={LAYER}&image=nodata:test:0", 400, "nodata"),
        (f"/api/models/{MODEL}/features.png?layer={LAYER}&image={IMAGE}&scale=x", 400, "scale"),
        (f"/api/models/{MODEL}/explain?layer={LAYER}&image={IMAGE}&at=3", 400, "ROW,COL"),
        (f"/api/models/{MODEL}/explain?layer={LAYER}&image={IMAGE}&at=-1,2", 400, "ROW,COL"),
        (f"/api/models/{MODEL}/explain?layer={LAYER}&image={IMAGE}&at=99,2", 400, "outside"),
        (f"/api/models/{MODEL}/explain?layer={LAYER}&image={IMAGE}&at=1,2&channel=6", 400, "0..5"),
        (f"/api/models/{MODEL}/explain?layer={LAYER}&image={IMAGE}&at=1,2&channel=x", 400, "channel"),
        (f"/api/models/{MODEL}/explain?layer=dense_1&image={IMAGE}&at=1,2", 400, "cannot explain"),
        (f"/api/models/{MODEL}/attribute.png?image={IMAGE}&method=magic", 400, "unknown attribution method"),
        (f"/api/models/{MODEL}/attribute.png?image={IMAGE}&method=saliency&target=12", 400, "class"),
        (f"/api/models/{MODEL}/attribute.png?image={IMAGE}&method=saliency&target=zebra", 400, "class"),
    ],
)  # fmt: skip
def test_bad_requests_are_one_line_4xx(
    client: TestClient, url: str, status: int, says: str
) -> None:
    assert says in error_of(client, url, status)


@pytest.mark.parametrize(
    "image",
    ["/etc/passwd", "../secret.png", "..", "a/b.png", "C:%5Cx.png", "%252e%252e%252fx",
     "%2e%2e", "~/x.png", ".", "digit.png", "folder", "sample:../x"],
)  # fmt: skip
def test_image_specs_that_are_or_look_like_files_are_refused(
    client: TestClient, image: str
) -> None:
    message = error_of(client, f"/api/models/{MODEL}/features?layer={LAYER}&image={image}", 400)
    assert "upload:ID" in message


def test_runs_of_the_store_are_served_at_each_epoch(tiny_store: Path, tiny_ids) -> None:
    run = tiny_ids["sequential"]
    config = ServeConfig(store=tiny_store)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        for ref in (f"run:{run}@0", f"run:{run[:6]}@0", f"run:{run}"):
            data = get_json(client, f"/api/models/{quote(ref)}/kernels?layer=conv2D_1")
            epoch = ref.rpartition("@")[2] if "@" in ref else None
            model = convscope.load_model(f"run:{run}@{epoch or 2}", store=tiny_store)
            assert data["health"] == convscope.kernels(model, "conv2D_1").health().to_dict()
            assert data["weights"] == model.weights
        pool = client.app.state.convscope.models
        assert pool.key(f"run:{run}") == f"run:{run}@2" and len(pool) == 2
        message = error_of(client, f"/api/models/run:{run}@99/layers", 404)
        assert "no checkpoint of epoch 99" in message
        assert "no run" in error_of(client, "/api/models/run:nosuchrun/layers", 404)


def test_the_pool_keeps_the_recently_used_models_within_its_bounds(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from convscope.serve.modelpool import ModelPool, model_bytes

    pool = ModelPool(tmp_path, max_models=2)
    with ThreadPoolExecutor(4) as threads:  # asked at once: loaded once
        loaded = list(threads.map(pool.get, [MODEL] * 4))
    assert all(model is loaded[0] for model in loaded) and len(pool) == 1
    pool.get("lenet")
    assert pool.get(MODEL) is loaded[0]  # used last, so kept ...
    pool.get("lenet5-classic")
    assert MODEL in pool and "lenet" not in pool and len(pool) == 2  # ... and lenet went
    assert pool.nbytes == sum(model_bytes(pool.get(name)) for name in (MODEL, "lenet5-classic"))
    small = ModelPool(tmp_path, max_bytes=model_bytes(loaded[0]) + 1)
    small.get(MODEL)
    small.get("lenet5-classic")
    assert len(small) == 1 and "lenet5-classic" in small


def test_given_models_are_served_by_names_without_slashes() -> None:
    from convscope.serve.modelpool import served_names

    names = served_names(["/a/net.ckpt", "/b/net.ckpt", "x/net.py:build", "/c/lenet5", "lenet"])
    assert names == {"net.ckpt": "/a/net.ckpt", "net.ckpt (2)": "/b/net.ckpt",
                     "net.py:build": "x/net.py:build", "lenet5 (2)": "/c/lenet5",
                     "lenet": "lenet"}  # fmt: skip
