"""Activation maximisation: the input a class or a channel responds to most, by gradient ascent.

Starts from several random images and climbs a class logit, a class probability or a
channel's mean activation, with the regularisers of Olah et al., "Feature Visualization"
(Distill 2017) that make the result readable: random jitter, scale and rotation (one
``affine_grid`` per step), an occasional Gaussian blur (Yosinski et al. 2015), total
variation (Mahendran & Vedaldi 2015) and an L2 decay towards the data mean. Images are
optimised in a space that always maps to valid pixels: by default a 1/f-scaled Fourier
spectrum (with colour decorrelation for RGB), the idea of Lucid/Lucent's
``param/spatial.py`` and ``param/color.py``, put through a sigmoid; or a sigmoid of a
pixel-space parameter.

Written here rather than taken from Lucent because that package is unmaintained, is
tied to old PyTorch releases and optimises one target at a time; this version runs all
starts of all targets in one batch (8 starts of each of the ten LeNet-5 classes in 2-3 s
on one core) and says so when it fails: a gradient that vanishes at every start, or an
objective that stops rising, is reported as such and never drawn as if it were a result.

Three modules: :mod:`.targets` (what is climbed), :mod:`.image` (the parameterised
image and its per-step transforms) and :mod:`.ascent` (settings, the batched ascent
with its stop rule, and the results).
"""

from convscope.probe.maximize.ascent import (
    OBJECTIVES,
    PARAMETERISATIONS,
    PENALTY_WEIGHTS,
    SMALL_BATCH_ELEMENTS,
    MaximizeSettings,
    ProgressFn,
    ascent_size,
    default_settings,
    maximize,
    process_compute_mode,
)
from convscope.probe.maximize.image import (
    COLOR_CORRELATION_SVD_SQRT,
    ImageParam,
    color_decorrelation,
    gaussian_blur,
    random_affine,
    resolve_param,
    rfft2d_freqs,
    total_variation,
)
from convscope.probe.maximize.result import ROSE, STATUSES, MaximizeResult, TargetResult
from convscope.probe.maximize.targets import (
    ModelOutputError,
    Target,
    channel_targets,
    class_targets,
    maximize_targets,
    model_classes,
)

__all__ = [
    "COLOR_CORRELATION_SVD_SQRT",
    "OBJECTIVES",
    "PARAMETERISATIONS",
    "PENALTY_WEIGHTS",
    "ROSE",
    "SMALL_BATCH_ELEMENTS",
    "STATUSES",
    "ImageParam",
    "MaximizeResult",
    "MaximizeSettings",
    "ModelOutputError",
    "ProgressFn",
    "Target",
    "TargetResult",
    "ascent_size",
    "channel_targets",
    "class_targets",
    "color_decorrelation",
    "default_settings",
    "gaussian_blur",
    "maximize",
    "maximize_targets",
    "model_classes",
    "process_compute_mode",
    "random_affine",
    "resolve_param",
    "rfft2d_freqs",
    "total_variation",
]
