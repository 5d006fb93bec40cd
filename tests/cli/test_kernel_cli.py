"""``convscope kernels`` and ``apply-kernel``: JSON keys, files out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.models.checkpoint import save_checkpoint
from convscope.models.loading import load_model
from convscope.store import open_store
from tests.cli import assert_user_error, run


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lenet checkpoint, so that every command sees the same weights."""
    model = load_model("lenet", seed=3)
    return save_checkpoint(model, tmp_path_factory.mktemp("kernels") / "lenet.ckpt")


def test_kernels_json_contract(capsys, checkpoint: Path) -> None:
    status, out, _ = run(capsys, "kernels", str(checkpoint), "--layer", "conv2d_1", "--json")
    data = json.loads(out)
    assert status == 0
    assert {"model", "layer", "shape", "channel_order", "normalization"} <= set(data)
    assert data["shape"] == [20, 1, 5, 5] and data["layer"] == "conv2d_1"
    assert data["channel_order"] == "gray" and data["normalization"] == "per-kernel"
    assert data["grid"] == [4, 5] and "health" not in data


def test_kernels_health_json(capsys, checkpoint: Path) -> None:
    argv = ["kernels", str(checkpoint), "--layer", "conv2d_2", "--health", "--json"]
    status, out, _ = run(capsys, *argv, "--norm", "layer", "--reduce", "mean")
    data = json.loads(out)
    assert status == 0 and data["normalization"] == "layer" and data["reduce"] == "mean"
    kernels = data["health"]["kernels"]
    assert len(kernels) == 50
    assert {"index", "norm", "dead", "duplicate_of", "high_freq_energy"} <= set(kernels[0])
    weights = load_model(str(checkpoint)).module.conv2d_2.weight.detach().numpy()
    assert kernels[7]["norm"] == pytest.approx(float(np.linalg.norm(weights[7])), rel=1e-6)
    summary = data["health"]["summary"]
    assert summary["kernels"] == 50 and summary["dead"] == 0
    assert summary["high_freq_energy_white_noise"] == pytest.approx(1 - (33 / 64) ** 2)


def test_kernels_files_out(capsys, checkpoint: Path, tmp_path: Path) -> None:
    png, svg, npy, health = (tmp_path / n for n in ("k.png", "k.svg", "k.npy", "h.png"))
    argv = ["kernels", str(checkpoint), "--layer", "conv2d_1", "--out", str(png)]
    status, out, err = run(capsys, *argv, "--npy", str(npy), "--health-out", str(health))
    assert status == 0 and f"wrote {png}" in err and "conv2d_1" in out
    assert Image.open(png).size[0] > 200 and Image.open(health).size[0] > 200
    weights = load_model(str(checkpoint)).module.conv2d_1.weight.detach().numpy()
    np.testing.assert_array_equal(np.load(npy), weights)  # --npy round-trip, O x I x H x W
    status, _, _ = run(capsys, "kernels", str(checkpoint), "--layer", "conv2d_2", "--out", str(svg))
    assert status == 0 and "<svg" in svg.read_text()[:500]


def test_kernels_bgr_and_resnet50(capsys) -> None:
    argv = ["kernels", "resnet50", "--layer", "conv1", "--json", "--bgr"]
    status, out, _ = run(capsys, *argv)
    data = json.loads(out)
    assert status == 0 and data["shape"] == [64, 3, 7, 7] and data["grid"] == [8, 8]
    assert data["channel_order"] == "BGR" and "BGR" in data["caption"]


def _store(root: Path) -> tuple[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(6, 1, 5, 5)).astype(np.float32) for _ in range(3)]
    with open_store(root) as store:
        run_ = store.create_run(name="lenet-mnist", model="lenet", dataset="mnist", config={})
        for epoch, w in enumerate(weights):
            store.commit_epoch(run_.id, epoch, metrics={"val_acc": 0.1},
                               arrays={("kernels", "conv2d_1"): w})  # fmt: skip
        return run_.id, weights


def test_kernels_over_epochs(capsys, tmp_path: Path) -> None:
    run_id, weights = _store(tmp_path / "runs")
    gif, npy = tmp_path / "k.gif", tmp_path / "k.npy"
    argv = ["kernels", f"run:{run_id}", "--store", str(tmp_path / "runs"), "--layer", "conv2d_1"]
    status, out, _ = run(capsys, *argv, "--epochs", "all", "--health", "--json",
                         "--out", str(gif), "--npy", str(npy))  # fmt: skip
    data = json.loads(out)
    assert status == 0 and data["run"] == run_id and data["shape"] == [6, 1, 5, 5]
    assert [e["epoch"] for e in data["epochs"]] == [0, 1, 2]
    assert data["epochs"][2]["health"]["summary"]["kernels"] == 6
    with Image.open(gif) as animation:
        assert animation.n_frames == 3
    np.testing.assert_array_equal(np.load(npy), np.stack(weights))
    png = tmp_path / "e.png"
    status, _, _ = run(capsys, *argv, "--epochs", "0,2", "--out", str(png))
    assert status == 0 and png.exists()
    assert_user_error(run(capsys, *argv, "--epochs", "0,9"), "no kernels of epoch 9")
    assert_user_error(run(capsys, *argv, "--epochs", "x"), "--epochs")
    argv[5] = "conv9"
    assert_user_error(run(capsys, *argv, "--epochs", "all"), "recorded: conv2d_1")


def test_apply_kernel(capsys, checkpoint: Path, tmp_path: Path) -> None:
    out_png, npy = tmp_path / "r.png", tmp_path / "r.npy"
    argv = ["apply-kernel", str(checkpoint), "--layer", "conv2d_1", "--kernel", "3"]
    status, out, _ = run(capsys, *argv, "--image", "sample:china", "--json",
                         "--out", str(out_png), "--npy", str(npy))  # fmt: skip
    data = json.loads(out)
    assert status == 0 and data["kernel"] == 3 and data["response_shape"] == [28, 28]
    assert data["image"] == "sample:china" and data["image_shape"] == [28, 28]
    assert np.load(npy).shape == (28, 28) and np.load(npy).max() == pytest.approx(data["max"])
    assert Image.open(out_png).size[0] > 300
    status, out, _ = run(capsys, *argv, "--image", "mnist:test:0")
    assert status == 0 and "kernel 3" in out


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["kernels", "lenet", "--layer", "dense_1"],
         ["'dense_1' (LinearAct) has no convolution kernels", "conv layers: conv2d_1, conv2d_2"]),
        (["kernels", "lenet", "--layer", "conv2d"], ["no layer 'conv2d'", "did you mean"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--cols", "0"], ["--cols"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--limit", "0"], ["--limit"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--bgr"], ["needs three"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--norm", "bad"], ["--norm"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--out", "k.gif"], ["--epochs"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--out", "k.txt"], ["must end in"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--npy", "k.txt"], [".npy"]),
        (["kernels", "lenet", "--layer", "conv2d_1", "--epochs", "all"], ["run:ID"]),
        (["kernels", "lenet", "--layer", "conv2d_2", "--reduce", "norm", "--norm", "diverging"],
         ["never negative"]),
        (["kernels", "lenet"], ["--layer"]),
        (["apply-kernel", "lenet", "--layer", "conv2d_1", "--kernel", "20", "--image",
          "mnist:test:0"], ["20 kernels (0-19); got 20"]),
        (["apply-kernel", "lenet", "--layer", "conv2d_1", "--kernel", "0", "--image",
          "mnist:test:0-2", "--index", "2"], ["--index 2 is out of range", "0-1"]),
        (["apply-kernel", "lenet", "--layer", "conv2d_1", "--kernel", "0", "--image",
          "sample:moon"], ["sample:china"]),
        (["apply-kernel", "lenet", "--layer", "conv2d_1", "--kernel", "0", "--image",
          "missing.png"], ["missing.png"]),
        (["apply-kernel", "lenet", "--layer", "dense_2", "--kernel", "0", "--image",
          "mnist:test:0"], ["conv layers: conv2d_1, conv2d_2"]),
        (["apply-kernel", "lenet", "--layer", "conv2d_2", "--kernel", "0", "--image",
          "sample:china", "--bgr"], ["three input channels"]),
    ],
)  # fmt: skip
def test_user_mistakes_are_one_line_and_exit_2(
    capsys, argv: list[str], fragments: list[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert_user_error(run(capsys, *argv), *fragments)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_tiny_image_is_refused_in_one_line(capsys, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.new("L", (4, 4)).save(tiny)
    argv = ["apply-kernel", "lenet", "--layer", "conv2d_2", "--kernel", "0", "--image", str(tiny)]
    assert_user_error(run(capsys, *argv, "--full-size"), "too small")


def test_help_has_examples(capsys) -> None:
    for command in ("kernels", "apply-kernel"):
        status, out, _ = run(capsys, command, "--help")
        assert status == 0 and "examples:" in out.lower()


def test_health_text_lists_dead_duplicate_and_noisy_kernels(capsys, tmp_path: Path) -> None:
    (tmp_path / "kernels4.py").write_text(
        "import torch\n"
        "from torch import nn\n\n"
        "def make():\n"
        "    model = nn.Sequential(nn.Conv2d(1, 4, 5), nn.Flatten(), nn.Linear(4 * 24 * 24, 2))\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    w = model[0].weight\n"
        "    with torch.no_grad():\n"
        "        w.copy_(torch.randn(4, 1, 5, 5, generator=g) * 0.2)\n"
        "        w[1] = 0.0\n"
        "        w[2] = w[0] * 3.0\n"
        "        w[3, 0] = torch.tensor([[(-1.0) ** (i + j) for j in range(5)] for i in range(5)])\n"
        "    return model\n"
    )
    status, out, err = run(
        capsys,
        "kernels",
        f"{tmp_path / 'kernels4.py'}:make",
        "--input-shape",
        "1,28,28",
        "--layer",
        "0",
        "--health",
    )
    assert status == 0, err
    assert "kernel 1: dead" in out and "kernel 2: near-duplicate of 0" in out
    assert "kernel 3: noisy (" in out and "kernel 0:" not in out
