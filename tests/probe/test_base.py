"""What every probe result shares: a short repr that never prints its arrays."""

from __future__ import annotations

import numpy as np

from convscope.models.loading import load_model
from convscope.probe.base import short_repr
from convscope.probe.features import feature_maps
from convscope.probe.kernels import kernel_set


def test_result_reprs_show_shapes_not_data() -> None:
    model = load_model("lenet")
    kernels = kernel_set(model, "conv2d_2")
    text = repr(kernels)
    assert text.startswith("KernelSet(model='lenet', layer='conv2d_2', ")
    assert "weights=array(50x20x5x5 float32)" in text and len(text) < 400
    assert "array(1000x5x5 float32)" in repr(kernels.grid(per_channel=True))  # 50 x 20 tiles
    assert "similarity=array(50x50 float64)" in repr(kernels.health())
    maps = feature_maps(model, np.zeros((28, 28), dtype=np.uint8), ["conv2d_1"])
    assert "LayerMaps(...)" in repr(maps) and "pixels=array(28x28 uint8)" in repr(maps)
    assert repr(maps.layers[0]) == (
        "LayerMaps(name='conv2d_1', type='Conv2dAct', output=array(1x20x28x28 float32), "
        "call=0, calls=1)"
    )
    assert short_repr(maps.layers[0]) == repr(maps.layers[0])
