"""Convolution kernels: extraction, display normalisation, health numbers, epochs, responses.

Everything here computes; :mod:`convscope.render.kernels` draws. One module per job:

- :mod:`~convscope.probe.kernels.weights`: find a conv layer (errors naming the conv
  layers) and extract its kernels as a :class:`KernelSet`;
- :mod:`~convscope.probe.kernels.display`: the display arrays a grid shows (the
  ``per-kernel``, ``layer`` and ``diverging`` normalisations, :func:`kernel_images`,
  :func:`grid_shape`) and :class:`KernelGrid` / :func:`kernel_grid`;
- :mod:`~convscope.probe.kernels.health`: norms, dead kernels, near-duplicates and
  high-frequency energy, :class:`KernelHealth` / :func:`kernel_health`;
- :mod:`~convscope.probe.kernels.epochs`: the kernels a recorded run kept each epoch,
  :class:`KernelEpochs` / :func:`kernels_over_epochs`;
- :mod:`~convscope.probe.kernels.response`: one kernel applied to one image (including
  ``sample:NAME`` photos), :class:`KernelResponse` / :func:`apply_kernel`.

This package re-exports the public names of all of them.
"""

from __future__ import annotations

from convscope.data.spec import SAMPLE_IMAGES, sample_image  # noqa: F401  (also importable here)

# Names marked F401 were public before the split but are not in ``__all__``; they are
# re-exported so ``convscope.probe.kernels.NAME`` keeps working and ``import *`` is unchanged.
from convscope.probe.kernels.display import (
    MAX_INPUT_COLUMNS,  # noqa: F401
    MAX_ROWS,  # noqa: F401
    MAX_TILES,  # noqa: F401
    NORMALIZATIONS,
    REDUCTIONS,
    KernelGrid,
    grid_shape,
    kernel_grid,
    kernel_images,
    layer_range,  # noqa: F401
    normalize_diverging,
    normalize_layer,
    normalize_per_kernel,
)
from convscope.probe.kernels.epochs import KernelEpochs, kernels_over_epochs
from convscope.probe.kernels.health import (
    DEAD_ABSOLUTE,  # noqa: F401
    DEAD_RELATIVE,  # noqa: F401
    DUPLICATE_COSINE,  # noqa: F401
    HIGH_FREQ_CUTOFF,  # noqa: F401
    KernelHealth,
    cosine_similarity,  # noqa: F401
    high_freq_energy,
    high_freq_mask,
    kernel_health,
    white_noise_distribution,
    white_noise_high_freq_energy,
)
from convscope.probe.kernels.response import (
    KernelResponse,
    apply_kernel,
    conv_response,
    layer_input,
    resolve_image,
)
from convscope.probe.kernels.weights import KernelSet, conv_layer_names, find_conv, kernel_set

__all__ = [
    "NORMALIZATIONS",
    "REDUCTIONS",
    "KernelEpochs",
    "KernelGrid",
    "KernelHealth",
    "KernelResponse",
    "KernelSet",
    "apply_kernel",
    "conv_layer_names",
    "conv_response",
    "find_conv",
    "grid_shape",
    "high_freq_energy",
    "high_freq_mask",
    "kernel_grid",
    "kernel_health",
    "kernel_images",
    "kernel_set",
    "kernels_over_epochs",
    "layer_input",
    "normalize_diverging",
    "normalize_layer",
    "normalize_per_kernel",
    "resolve_image",
    "sample_image",
    "white_noise_distribution",
    "white_noise_high_freq_energy",
]
