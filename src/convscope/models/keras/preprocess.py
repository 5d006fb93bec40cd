"""Input preprocessing modes (``--preprocess``): what pixel values a model was trained on.

Keras applications document three modes (``tf``, ``caffe``, ``torch``); models
trained in tutorials mostly take pixels / 255. Each mode is expressed as an
:class:`InputSpec` normalisation (InputSpec divides by 255 first, then applies
``(x - mean) / std``), so every convscope command feeds the model the same way.
"""

from __future__ import annotations

from dataclasses import replace

from convscope.data.preprocess import InputSpec
from convscope.errors import ModelError
from convscope.models.constants import PREPROCESS_MODES

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def with_preprocess(spec: InputSpec, mode: str) -> InputSpec:
    """``spec`` with the normalisation of preprocessing ``mode`` (size and resizing kept)."""
    if mode not in PREPROCESS_MODES:
        raise ModelError(
            f"unknown preprocessing {mode!r}; choose one of {', '.join(PREPROCESS_MODES)}"
        )
    if mode in ("caffe", "torch") and spec.channels != 3:
        raise ModelError(
            f"--preprocess {mode} normalises the three ImageNet colour channels, but the "
            f"model takes {spec.channels}-channel images; use scale, none or tf"
        )
    order = "RGB"
    if mode == "scale":
        mean, std = (0.0,), (1.0,)
    elif mode == "none":
        mean, std = (0.0,), (1.0 / 255.0,)
    elif mode == "tf":
        mean, std = (0.5,), (0.5,)
    elif mode == "caffe":
        mean, std, order = tuple(m / 255.0 for m in CAFFE_MEAN_BGR), (1.0 / 255.0,), "BGR"
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return replace(
        spec, mean=mean, std=std, channel_order=order, extra={**spec.extra, "preprocess": mode}
    )
