"""``convscope attribute`` and ``convscope diagram``: files, JSON, one-line errors."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.cli import assert_user_error, run

UNTRACEABLE = """
import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 3))

    def forward(self, x):
        x = self.conv(x)
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
            x = -x
        return self.head(x)


def build():
    return Gate()
"""


def test_attribute_writes_figure_npy_and_json(capsys, tmp_path: Path, trained_lenet5) -> None:
    out, npy = tmp_path / "attr.png", tmp_path / "maps.npy"
    status, stdout, stderr = run(
        capsys, "attribute", str(trained_lenet5), "--image", "mnist:test:0", "--method", "all",
        "--steps", "16", "--out", str(out), "--npy", str(npy), "--json",
    )  # fmt: skip
    assert status == 0, stderr
    data = json.loads(stdout)
    assert data["model"] == "lenet5" and data["image"] == "mnist:test:0"
    assert data["target"] == data["predicted"] == 7 and data["target_name"] == "7"
    methods = {m["method"]: m for m in data["methods"]}
    assert list(methods) == ["saliency", "gradcam", "ig", "occlusion"]
    assert methods["gradcam"]["layer"] == "conv2d_2"
    assert methods["ig"]["completeness_error"] < 0.05
    assert all(m["min"] <= m["max"] for m in methods.values())
    assert out.stat().st_size > 10_000 and f"wrote {out}" in stderr
    maps = np.load(npy)
    assert maps.shape == (1, 4, 28, 28) and maps.dtype == np.float32


def test_attribute_several_images_and_a_named_target(capsys, tmp_path: Path) -> None:
    status, stdout, _ = run(
        capsys, "attribute", "residual", "--image", "fashion-mnist:test:0-2",
        "--method", "gradcam,occlusion", "--target", "Trouser", "--layer", "add3",
        "--window", "7", "--stride", "7", "--json",
    )  # fmt: skip
    assert status == 0
    data = json.loads(stdout)
    assert [d["image"] for d in data] == ["fashion-mnist:test:0", "fashion-mnist:test:1"]
    assert all(d["target"] == 1 and d["target_name"] == "Trouser" for d in data)
    assert data[0]["methods"][0]["layer"] == "add3"
    assert data[0]["methods"][1]["window"] == 7


def test_attribute_table_for_people(capsys) -> None:
    status, stdout, _ = run(
        capsys, "attribute", "lenet5", "--image", "mnist:test:0", "--method", "saliency"
    )
    assert status == 0 and "Saliency" in stdout and "mnist:test:0" in stdout


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--method", "salency"], ["unknown attribution method 'salency'", "saliency"]),
        (["--method", "gradcam", "--layer", "conv2d_9"], ["no layer 'conv2d_9'"]),
        (["--method", "gradcam", "--layer", "dense_1"], ["N x C x H x W"]),
        (["--method", "ig", "--target", "cat"], ["unknown class 'cat'", "the classes are 0, 1, 2"]),
        (["--method", "ig", "--target", "12"], ["class '12' is out of range", "0, 1, 2"]),
        (["--method", "saliency", "--layer", "conv2d_1"], ["add gradcam"]),
        (["--method", "ig", "--steps", "1"], ["--steps"]),
        (["--method", "occlusion", "--window", "40"], ["--window"]),
        (["--method", "ig", "--out", "x.jpg"], [".png"]),
        (["--method", "ig", "--npy", "maps.txt"], [".npy"]),
    ],
)
def test_attribute_user_mistakes_exit_2(capsys, extra: list[str], fragments: list[str]) -> None:
    result = run(capsys, "attribute", "lenet5", "--image", "mnist:test:0", *extra)
    assert_user_error(result, *fragments)


def test_attribute_refuses_too_many_images(capsys) -> None:
    result = run(capsys, "attribute", "lenet5", "--image", "mnist:test:0-20", "--method", "ig")
    assert_user_error(result, "at most 8")


def test_diagram_svg_png_dot_and_json(capsys, tmp_path: Path) -> None:
    svg = tmp_path / "inception.svg"
    status, _, stderr = run(capsys, "diagram", "inception", "--out", str(svg))
    assert status == 0 and f"wrote {svg}" in stderr
    texts = {el.text for el in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")}
    assert {"conc1", "conc2", "conc3", "conv2D_12", "hidden", "end"} <= texts

    png = tmp_path / "residual.png"
    assert run(capsys, "diagram", "residual", "--out", str(png))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dot = tmp_path / "residual.dot"
    assert run(capsys, "diagram", "residual", "--out", str(dot))[0] == 0
    assert '"conv2d_1" -> "add1";' in dot.read_text()

    status, stdout, _ = run(capsys, "diagram", "residual", "--json")
    data = json.loads(stdout)
    assert status == 0 and data["traced"] is True and data["total_params"] == 59_466
    add1 = next(n for n in data["nodes"] if n["name"] == "add1")
    assert sum(edge[1] == add1["id"] for edge in data["edges"]) == 2


def test_diagram_of_an_untraceable_model_warns_and_draws_the_tree(capsys, tmp_path: Path) -> None:
    source = tmp_path / "gate.py"
    source.write_text(UNTRACEABLE)
    out = tmp_path / "gate.svg"
    status, _, stderr = run(
        capsys, "diagram", f"{source}:build", "--input-shape", "1,8,8", "--out", str(out)
    )
    assert status == 0
    warning = [line for line in stderr.splitlines() if line.startswith("convscope: warning:")]
    assert len(warning) == 1 and "could not be traced" in warning[0]
    assert "module tree" in out.read_text()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ([], ["--out", "--json"]),
        (["--out", "model.jpg"], [".svg"]),
        (["--out", "nowhere/model.svg"], ["does not exist"]),
        (["--depth", "0", "--json"], ["--depth"]),
    ],
)
def test_diagram_user_mistakes_exit_2(capsys, extra: list[str], fragments: list[str]) -> None:
    assert_user_error(run(capsys, "diagram", "lenet5", *extra), *fragments)


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz is installed here")
def test_diagram_engine_dot_without_graphviz(capsys, tmp_path: Path) -> None:
    result = run(capsys, "diagram", "lenet5", "--engine", "dot", "--out", str(tmp_path / "a.svg"))
    assert_user_error(result, "Graphviz", "dot")
