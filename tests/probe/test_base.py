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


def test_table_results_save_their_json(tmp_path) -> None:
    import json

    import pytest

    from convscope.errors import ConvscopeError
    from convscope.probe.predict import predict
    from convscope.probe.summary import summarize

    model = load_model("lenet5")
    summary = summarize(model)
    path = summary.save(str(tmp_path / "summary.json"))
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(
        json.dumps(summary.to_dict())
    )
    assert path.endswith("summary.json")
    predictions = predict(model, "mnist:test:0-2")
    predictions.save(str(tmp_path / "p.json"))
    assert len(json.loads((tmp_path / "p.json").read_text())["predictions"]) == 2
    with pytest.raises(ConvscopeError, match=r"saved as \.json"):
        predictions.save(str(tmp_path / "p.png"))
