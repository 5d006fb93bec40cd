"""``convscope examples``: the JSON the library gives, the figure, and one-line mistakes."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

import convscope
from tests.cli import assert_user_error, run

KEYS = ["model", "weights", "layer", "channel", "images", "count", "statistic", "top", "bottom"]


def test_json_is_the_library_result(capsys) -> None:
    status, out, err = run(capsys, "examples", "lenet5", "--layer", "conv2d_2", "--channel",
                           "4", "--image", "mnist:test:0-200", "--top", "5", "--json")  # fmt: skip
    assert status == 0, err
    data = json.loads(out)
    assert list(data) == KEYS
    expected = convscope.top_activations("lenet5", "conv2d_2", "mnist:test:0-200", 5, channel=4)
    assert data == json.loads(json.dumps(expected.to_dict()))
    assert len(data["top"]) == len(data["bottom"]) == 5 and data["count"] == 200
    assert [e["activation"] for e in data["top"]] == sorted(
        (e["activation"] for e in data["top"]), reverse=True
    )


def test_out_writes_the_figure_and_the_default_set_is_said(capsys, tmp_path) -> None:
    out = tmp_path / "examples.png"
    status, stdout, err = run(capsys, "examples", "lenet5", "--layer", "dense_1", "--channel",
                              "3", "--out", str(out), "--batch-size", "128")  # fmt: skip
    assert status == 0 and stdout == ""
    assert "ranking the stratified sample of mnist (500 images)" in err
    assert f"wrote {out}" in err
    with Image.open(out) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"))
    assert width > 900 and 350 < height < width  # nine images across, two labelled rows
    assert pixels.std() > 20  # images drawn, not a blank page


def test_a_table_without_out_or_json(capsys) -> None:
    status, out, _ = run(capsys, "examples", "lenet5", "--layer", "conv2d_1", "--channel", "0",
                         "--image", "mnist:test:0-30", "--top", "2")  # fmt: skip
    assert status == 0
    assert "most" in out and "least" in out and "mnist:test:" in out and "untrained" in out.lower()


def test_mistakes_exit_2_with_one_line_and_write_nothing(capsys, tmp_path) -> None:
    out = tmp_path / "never.png"
    base = ["examples", "lenet5", "--image", "mnist:test:0-20", "--out", str(out)]
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_3", "--channel", "0"),
        "no layer 'conv2d_3'",
        "did you mean conv2d_2, conv2d_1",
    )
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_2", "--channel", "16"),
        "channel 16 is out of range",
        "0-15",
    )
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_2", "--channel", "1", "--top", "0"),
        "--top must be at least 1",
    )
    assert_user_error(
        run(capsys, *base, "--layer", "conv2d_2", "--channel", "1", "--batch-size", "0"),
        "--batch-size must be at least 1",
    )
    assert_user_error(
        run(capsys, "examples", "lenet5", "--layer", "conv2d_2", "--channel", "one"),
        "argument --channel",
    )
    bad_name = str(tmp_path / "f.txt")  # refused before the default set is even made
    assert_user_error(
        run(
            capsys, "examples", "lenet5", "--layer", "conv2d_2", "--channel", "1", "--out", bad_name
        ),
        "f.txt",
        "must end in .png",
    )
    assert_user_error(
        run(capsys, "examples", "torchvision:resnet18", "--layer", "layer1", "--channel", "1"),
        "no default image set",
        "--image SPEC",
    )
    assert not out.exists()
