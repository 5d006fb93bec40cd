"""The model explorer's browse routes answer what the library answers.

Against the tiny store of ``conftest`` (two 2-epoch Fashion-MNIST runs, checkpoints
0..2): a model's info and a run's checkpoints against the store and ``load_model``, the
dataset pages against the labels read directly, predictions against
``convscope.predict``, kernel health against ``kernels_over_epochs``; every user's
mistake is one 4xx line, never a 5xx.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import convscope
from convscope.data.classes import FASHION_MNIST_CLASSES, MNIST_CLASSES
from convscope.serve.state import ServeConfig
from tests.serve.conftest import error_of, get_json, make_client

LAYER = "conv2D_1"
FASHION = "fashion-mnist"

NOT_A_CLASSIFIER = '''
from torch import nn


def build():
    """A conv layer alone: its output is maps, not class scores."""
    module = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1))
    module.input_spec = {"channels": 1, "height": 28, "width": 28}
    return module
'''


def png_pixels(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


# --------------------------------------------------------------------------- models


def test_info_of_a_run_pins_its_latest_epoch(client, tiny_store: Path, tiny_ids) -> None:
    from convscope.probe.summary import count_params

    run = tiny_ids["sequential"]
    data = get_json(client, f"/api/models/{quote(f'run:{run[:6]}')}/info")
    model = convscope.load_model(f"run:{run}@2", store=tiny_store)
    assert data == {
        "name": "sequential",
        "model": f"run:{run}@2",
        "weights": model.weights,
        "dataset": FASHION,
        "input_shape": [1, 28, 28],
        "params": count_params(model.module)[0],
        "classes": list(FASHION_MNIST_CLASSES),
        "run": run,
        "epoch": 2,
        "epochs": [0, 1, 2],
    }
    again = get_json(client, f"/api/models/{quote(data['model'])}/info")
    assert again == data  # the pinned MODEL names the same model and epoch
    first = get_json(client, f"/api/models/{quote(f'run:{run}@0')}/info")
    assert first["model"] == f"run:{run}@0" and first["epoch"] == 0
    assert first["weights"] == f"run {run} epoch 0 (before the first update)"


def test_info_of_a_zoo_model(client) -> None:
    data = get_json(client, "/api/models/lenet5/info")
    assert data["model"] == "lenet5" and data["name"] == "lenet5"
    assert data["weights"] == convscope.load_model("lenet5").weights == "random init (seed 0)"
    assert data["classes"] == list(MNIST_CLASSES) and data["dataset"] == "mnist"
    assert data["params"] == 44426 and data["input_shape"] == [1, 28, 28]
    assert data["run"] is None and data["epoch"] is None and data["epochs"] is None


def test_checkpoints_of_a_run(client, tiny_store: Path, tiny_ids) -> None:
    run = tiny_ids["residual"]
    data = get_json(client, f"/api/runs/{run[:6]}/checkpoints")
    with convscope.open_store(tiny_store, create=False) as store:
        record, epochs = store.run(run), sorted(store.checkpoints(run))
    assert data == {
        "run": run,
        "name": record.name,
        "model": "residual",
        "dataset": FASHION,
        "epochs": epochs,
        "latest": 2,
    }
    assert epochs == [0, 1, 2]
    assert "no run" in error_of(client, "/api/runs/nosuchrun/checkpoints", 404)


def test_an_epoch_the_run_lacks_is_a_404_that_lists_its_epochs(client, tiny_ids) -> None:
    run = tiny_ids["sequential"]
    for url in (
        f"/api/models/{quote(f'run:{run}@99')}/info",
        f"/api/models/{quote(f'run:{run[:6]}@99')}/kernels?layer={LAYER}",
    ):
        message = error_of(client, url, 404)
        assert f"run {run} (tiny/sequential) has no checkpoint of epoch 99" in message
        assert message.endswith("it has epochs 0-2")
    message = error_of(client, f"/api/models/{quote(f'run:{run}@last')}/info", 400)
    assert "the epoch after @ must be a whole number" in message


@pytest.mark.parametrize("route", ["info", "predict?image=fashion-mnist:test:0"])
def test_models_a_request_may_not_name(client, route: str) -> None:
    assert "unknown model 'lenet6'; did you mean" in error_of(
        client, f"/api/models/lenet6/{route}", 404
    )
    for path in ("net.ckpt", "x/y", "~model", "net.py:build"):
        assert "a request never names a file" in error_of(
            client, f"/api/models/{path}/{route}", 400
        )
    assert "encoded dots and slashes" in error_of(client, f"/api/models/..%2Fm.pt/{route}", 400)
    assert "no run" in error_of(client, f"/api/models/run:nosuchrun/{route}", 404)


# --------------------------------------------------------------------------- inputs


def test_samples_are_the_photos_with_their_sizes(client) -> None:
    from convscope.data.spec import SAMPLE_IMAGES, sample_image

    data = get_json(client, "/api/samples")
    assert data and {item["name"] for item in data} <= set(SAMPLE_IMAGES)
    assert {"china", "flower"} <= {item["name"] for item in data}  # scikit-learn's
    for item in data:
        pixels = sample_image(item["name"])
        assert item["spec"] == f"sample:{item['name']}"
        assert item["shape"] == [*pixels.shape[:2], pixels.shape[2] if pixels.ndim == 3 else 1]


def test_a_page_of_a_dataset_is_its_labels(client) -> None:
    labels = convscope.load_dataset(FASHION, "test").labels
    data = get_json(client, f"/api/datasets/{FASHION}/images?split=test&start=30&count=24")
    assert data["dataset"] == FASHION and data["split"] == "test"
    assert data["total"] == 10000 and data["start"] == 30 and data["count"] == 24
    assert data["classes"] == list(FASHION_MNIST_CLASSES)
    assert [im["spec"] for im in data["images"]] == [f"{FASHION}:test:{i}" for i in range(30, 54)]
    assert [im["label"] for im in data["images"]] == labels[30:54].tolist()
    assert [im["class"] for im in data["images"]] == [
        FASHION_MNIST_CLASSES[k] for k in labels[30:54]
    ]
    thumbnail = png_pixels(client.get(f"/api/image.png?image={data['images'][0]['spec']}"))
    assert np.array_equal(thumbnail, convscope.load_dataset(FASHION, "test").images[30])
    default = get_json(client, f"/api/datasets/{FASHION}/images")
    assert default["split"] == "test" and default["start"] == 0 and default["count"] == 24


def test_a_page_of_one_class(client) -> None:
    labels = convscope.load_dataset(FASHION, "train").labels
    sandals = np.flatnonzero(labels == 5)
    for label in ("5", "Sandal", "sandal"):
        url = f"/api/datasets/{FASHION}/images?split=train&label={label}&start=10&count=200"
        data = get_json(client, url)
        assert data["total"] == len(sandals) == 6000 and data["count"] == 200
        assert [im["spec"] for im in data["images"]] == [
            f"{FASHION}:train:{i}" for i in sandals[10:210]
        ]
        assert {im["label"] for im in data["images"]} == {5}
        assert {im["class"] for im in data["images"]} == {"Sandal"}
    last = get_json(client, f"/api/datasets/{FASHION}/images?label=Bag&start=995&count=24")
    assert last["total"] == 1000 and last["count"] == 5 and len(last["images"]) == 5


def test_a_start_past_the_end_is_an_empty_page(client) -> None:
    for url in (
        f"/api/datasets/{FASHION}/images?start=10000",
        f"/api/datasets/{FASHION}/images?start=5000&label=Coat",
    ):
        data = get_json(client, url)
        assert data["images"] == [] and data["count"] == 0 and data["total"] in (10000, 1000)


@pytest.mark.parametrize(
    ("query", "status", "line"),
    [
        ("label=Sandl", 400, "unknown class 'Sandl'; did you mean Sandal"),
        ("label=10", 400, "class '10' is out of range; the classes are 0 T-shirt/top"),
        ("label=1,2", 400, "the label is one class"),
        ("count=0", 400, "count must be 1 to 200, got 0"),
        ("count=201", 400, "count must be 1 to 200, got 201"),
        ("start=-1", 400, "start counts from 0, got -1"),
        ("count=many", 400, "bad parameter count"),
        ("split=valid", 400, "has no split 'valid'; choose one of: train, test"),
    ],
)
def test_bad_page_parameters(client, query: str, status: int, line: str) -> None:
    assert line in error_of(client, f"/api/datasets/{FASHION}/images?{query}", status)


def test_an_unknown_dataset_is_a_404_with_close_names(client) -> None:
    message = error_of(client, "/api/datasets/fashion_mnst/images", 404)
    assert message.startswith("unknown dataset 'fashion_mnst'; did you mean fashion-mnist?")
    assert "the datasets are mnist, fashion-mnist" in message
    assert "unknown dataset 'cifar10'" in error_of(client, "/api/datasets/cifar10/images", 404)


def test_a_dataset_that_needs_a_download_is_not_fetched_in_a_request(
    client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("CONVSCOPE_HOME", str(home))  # MNIST is in no local place now
    for url in (
        "/api/datasets/mnist/images",
        "/api/models/lenet5/predict?image=mnist:test:0",
        "/api/image.png?image=mnist:test:0",
        "/api/models/lenet5/features?layer=conv2d_1&image=mnist:test:0",
        "/api/models/lenet5/explain?layer=conv2d_1&image=mnist:test:0&at=1,1",
    ):
        message = error_of(client, url, 409)
        assert message.startswith("dataset mnist is not on this machine yet")
        assert "run `convscope data fetch mnist`" in message
    assert list(home.iterdir()) == []  # nothing was fetched
    data = get_json(client, f"/api/datasets/{FASHION}/images?count=2")  # Debian's: local
    assert data["total"] == 10000


def test_a_data_dir_counts_only_for_the_dataset_its_files_are(
    client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convscope.paths import DEBIAN_FASHION_MNIST_DIR

    home, data_dir = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    data_dir.mkdir()
    for file in DEBIAN_FASHION_MNIST_DIR.glob("*-ubyte.gz"):
        (data_dir / file.name).symlink_to(file)  # MNIST's file names, Fashion-MNIST's data
    monkeypatch.setenv("CONVSCOPE_HOME", str(home))
    monkeypatch.setenv("CONVSCOPE_DATA_DIR", str(data_dir))
    message = error_of(client, "/api/datasets/mnist/images?split=train", 409)
    assert "convscope data fetch mnist" in message
    page = get_json(client, f"/api/datasets/{FASHION}/images?split=train&count=3")
    labels = convscope.load_dataset(FASHION, "train").labels  # from data_dir, into home
    assert [im["label"] for im in page["images"]] == labels[:3].tolist()


# --------------------------------------------------------------------------- predict


def test_a_prediction_is_what_predict_says(client, tiny_store: Path, tiny_ids) -> None:
    run = tiny_ids["residual"]
    url = f"/api/models/{quote(f'run:{run}')}/predict?image={FASHION}:test:7&top=4"
    data = get_json(client, url)
    model = convscope.load_model(f"run:{run}", store=tiny_store)
    expected = convscope.predict(model, f"{FASHION}:test:7", top_k=4)
    record = expected.predictions[0]
    assert set(data) == {"model", "weights", "input", "label", "top", "probs"}
    assert data["model"] == expected.model == "residual"
    assert data["weights"] == expected.model_weights == f"run {run} epoch 2"
    assert data["input"] == f"{FASHION}:test:7" and data["label"] == record.label
    assert np.allclose(data["probs"], record.probs, rtol=0, atol=1e-6)
    assert [name for name, _ in data["top"]] == [name for name, _ in record.top]
    assert np.allclose([p for _, p in data["top"]], [p for _, p in record.top], atol=1e-6)
    assert len(data["top"]) == 4 and len(data["probs"]) == 10
    assert len(get_json(client, url.replace("top=4", "top=10"))["top"]) == 10
    default = get_json(client, url.replace("&top=4", ""))
    assert len(default["top"]) == 5
    cache = client.app.state.convscope.cache
    hits = cache.hits
    again = f"/api/models/{quote(f'run:{run[:6]}@2')}/predict?image={FASHION}:test:7&top=4"
    assert get_json(client, again) == data
    assert cache.hits == hits + 1  # asked again (another spelling): from the result cache


def test_a_photo_is_predicted_too(client) -> None:
    data = get_json(client, "/api/models/lenet5/predict?image=sample:china&top=1")
    assert data["input"] == "sample:china" and "label" not in data
    assert len(data["top"]) == 1 and np.isclose(sum(data["probs"]), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("image=mnist:test:0&top=0", "top must be at least 1, got 0"),
        (
            "image=fashion-mnist:test:0&top=11",
            "top must be 1 to 10 (the classes of lenet5), got 11",
        ),
        ("image=..%2F..%2Fetc%2Fpasswd", "a request never names a file"),
        ("image=%2Ftmp%2Fx.png", "a request never names a file"),
        ("image=fashion-mnist:test:10000", "index 10000 is out of range"),
        ("image=sample:nope", "no sample image 'nope'"),
        ("image=", "give an image"),
        ("top=3", "bad parameter image"),
    ],
)
def test_bad_predictions(client, query: str, line: str) -> None:
    assert line in error_of(client, f"/api/models/lenet5/predict?{query}", 400)


def test_a_model_that_is_not_a_classifier_cannot_predict(tiny_store: Path, tmp_path: Path) -> None:
    factory = tmp_path / "maps.py"
    factory.write_text(NOT_A_CLASSIFIER)
    with make_client(ServeConfig(store=tiny_store, models=(f"{factory}:build",))) as client:
        message = error_of(
            client, "/api/models/maps.py:build/predict?image=fashion-mnist:test:0", 400
        )
        assert "not one row of class scores per image" in message
        assert "predict needs a classifier" in message
        data = get_json(client, "/api/models/maps.py:build/info")
        assert data["model"] == "maps.py:build" and data["classes"] is None
        assert data["run"] is None and data["params"] == 40 and data["input_shape"] == [1, 28, 28]


# --------------------------------------------------------------------------- kernels


def test_kernel_health_over_epochs(client, tiny_store: Path, tiny_ids) -> None:
    run = tiny_ids["sequential"]
    data = get_json(client, f"/api/runs/{run[:6]}/kernels?layer={LAYER}")
    history = convscope.kernels_over_epochs(tiny_store, run, LAYER)
    assert data["run"] == run and data["layer"] == LAYER
    assert data["epochs"] == history.epochs == [0, 1, 2]
    expected = [h.summary() for h in history.health()]
    assert data["health"] == [
        {
            "epoch": epoch,
            "dead": s["dead"],
            "duplicates": s["duplicates"],
            "noisy": s["noisy"],
            "mean_norm": s["norm_mean"],
        }
        for epoch, s in zip(history.epochs, expected, strict=True)
    ]
    norms = [np.linalg.norm(w.reshape(len(w), -1), axis=1).mean() for w in history.weights]
    assert np.allclose([h["mean_norm"] for h in data["health"]], norms)


def test_kernels_over_epochs_picture(client, tiny_store: Path, tiny_ids) -> None:
    from convscope.render.figures import figure_png

    run = tiny_ids["residual"]
    pixels = png_pixels(client.get(f"/api/runs/{run}/kernels.png?layer={LAYER}"))
    history = convscope.kernels_over_epochs(tiny_store, run, LAYER)
    drawn = figure_png(history.grid("layer", limit=16).figure())  # what the CLI draws
    assert np.array_equal(pixels, np.asarray(Image.open(io.BytesIO(drawn))))
    assert pixels.std() > 0
    message = error_of(client, f"/api/runs/{run}/kernels.png?layer={LAYER}&norm=loud", 400)
    assert "loud" in message


def test_kernels_of_a_layer_the_run_did_not_record(client, tiny_ids) -> None:
    run = tiny_ids["sequential"]
    for route in ("kernels", "kernels.png"):
        message = error_of(client, f"/api/runs/{run}/{route}?layer=hidden", 400)
        assert f"run {run} has no kernels of layer 'hidden'" in message
        assert "(recorded: conv2D_1, conv2D_2" in message
        assert "no run" in error_of(client, f"/api/runs/nosuchrun/{route}?layer={LAYER}", 404)
    assert "bad parameter layer" in error_of(client, f"/api/runs/{run}/kernels", 400)


@pytest.fixture
def no_store_client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(ServeConfig(store=tmp_path / "none")) as client:
        yield client


def test_run_routes_without_a_store(no_store_client: TestClient) -> None:
    for url in ("/api/runs/abc/checkpoints", f"/api/runs/abc/kernels?layer={LAYER}"):
        assert "no run store" in error_of(no_store_client, url, 404)
    assert "no run store" in error_of(no_store_client, "/api/models/run:abc/info", 404)
