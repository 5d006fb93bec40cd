"""One rule for a SPEC naming several images in the one-image commands: --index picks one."""

from __future__ import annotations

import json

import numpy as np

from convscope.models.loading import load_model
from convscope.probe.attribute import attribute
from convscope.probe.explain import explain
from convscope.probe.features import feature_maps
from convscope.probe.kernels import apply_kernel
from tests.cli import assert_user_error, run


def test_library_probes_take_the_index_image() -> None:
    model = load_model("lenet5")
    spec, single = "mnist:test:10-20", "mnist:test:13"
    picked = explain(model, "conv2d_1", spec, (4, 5), index=3)
    assert picked.input_name == single
    assert picked.actual == explain(model, "conv2d_1", single, (4, 5)).actual
    maps = feature_maps(model, spec, ["conv2d_1"], index=3)
    np.testing.assert_array_equal(
        maps.layers[0].output, feature_maps(model, single, ["conv2d_1"]).layers[0].output
    )
    assert attribute(model, spec, "saliency", index=3).image == single
    response = apply_kernel(model, "conv2d_1", 0, spec, index=3)
    np.testing.assert_array_equal(
        response.response, apply_kernel(model, "conv2d_1", 0, single).response
    )


def test_cli_explain_and_apply_kernel_say_which_image(capsys) -> None:
    args = ["--layer", "conv2d_1", "--image", "mnist:test:10-20", "--index", "3"]
    status, out, err = run(capsys, "explain", "lenet5", *args, "--at", "4,5", "--json")
    assert status == 0, err
    assert json.loads(out)["input"] == "mnist:test:13"
    assert "names 10 images; using image 3, mnist:test:13" in err
    status, out, err = run(capsys, "apply-kernel", "lenet5", *args, "--kernel", "0", "--json")
    assert status == 0, err
    assert json.loads(out)["image"] == "mnist:test:13"
    assert_user_error(
        run(capsys, "explain", "lenet5", *args[:-1], "10", "--at", "1,1"),
        "--index 10 is out of range",
        "0-9",
    )
