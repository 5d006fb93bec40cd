"""Model names the CLI offers as choices, free of heavy imports so ``--help`` is fast.

:mod:`convscope.models.keras.preprocess` re-exports them; this module is their one source.
"""

from __future__ import annotations

PREPROCESS_MODES = {
    "scale": "pixels / 255, in [0, 1] (the default for Keras models)",
    "none": "raw pixels 0..255 (models that rescale inside; the default when a Keras "
    "model starts with a Rescaling layer)",
    "tf": "pixels / 127.5 - 1, in [-1, 1] (Keras 'tf' mode: MobileNet, Xception)",
    "caffe": "BGR with the ImageNet mean subtracted, not scaled (Keras 'caffe' mode: "
    "ResNet50, VGG)",
    "torch": "pixels / 255 normalised with the ImageNet mean and std (Keras 'torch' mode)",
}
"""``--preprocess`` choices and what each feeds the model."""
