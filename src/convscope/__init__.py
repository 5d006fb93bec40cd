"""convscope: look inside convolutional neural networks.

The public API, imported lazily so that ``convscope --version`` stays fast::

    import convscope
    model = convscope.load_model("residual")          # zoo, torchvision:, timm:, file.py:fn, .ckpt
    convscope.summary(model)                          # Keras-style table (rich / Jupyter)
    train = convscope.load_dataset("fashion-mnist", "train")
    convscope.kernels(model, "conv2D_1")              # results draw themselves in Jupyter
    convscope.feature_maps(model, "fashion-mnist:test:0", ["conv2D_1", "pool1"])
    convscope.activations(model, "fashion-mnist:test:0-10000", ["hidden"])  # N x 128
    convscope.show_images("fashion-mnist")            # a 10x10 grid titled with class names
    convscope.top_activations(model, "conv2D_2", channel=5)  # the images it likes most and least
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": ("convscope.models.loading", "load_model"),
    "LoadedModel": ("convscope.models.loaded", "LoadedModel"),
    "save_checkpoint": ("convscope.models.checkpoint", "save_checkpoint"),
    "summary": ("convscope.probe.summary", "summarize"),
    "open_store": ("convscope.store", "open_store"),
    "study": ("convscope.train.study", "study"),
    "StudySettings": ("convscope.train.study", "StudySettings"),
    "predict": ("convscope.probe.predict", "predict"),
    "load_dataset": ("convscope.data.datasets", "load_dataset"),
    "fetch_dataset": ("convscope.data.datasets", "fetch"),
    "resolve_images": ("convscope.data.spec", "resolve_images"),
    "InputSpec": ("convscope.data.preprocess", "InputSpec"),
    "ConvscopeError": ("convscope.errors", "ConvscopeError"),
    "kernels": ("convscope.probe.kernels", "kernel_set"),
    "kernels_over_epochs": ("convscope.probe.kernels", "kernels_over_epochs"),
    "apply_kernel": ("convscope.probe.kernels", "apply_kernel"),
    "feature_maps": ("convscope.probe.features", "feature_maps"),
    "activations": ("convscope.probe.streaming", "activations"),
    "Activations": ("convscope.probe.streaming", "Activations"),
    "open_images": ("convscope.data.stream", "open_images"),
    "show_images": ("convscope.data.grid", "show_images"),
    "explain": ("convscope.probe.explain", "explain"),
    "top_activations": ("convscope.probe.examples", "top_activations"),
    "example_images": ("convscope.probe.examples", "example_images"),
    "attribute": ("convscope.probe.attribute", "attribute"),
    "maximize": ("convscope.probe.maximize", "maximize"),
    "diagram": ("convscope.probe.graph", "model_graph"),
    "embed_run": ("convscope.embed.runs", "embed_run"),
    "ProjectionParams": ("convscope.embed.projection", "ProjectionParams"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'convscope' has no attribute {name!r}")
    module_name, attribute = _EXPORTS[name]
    return getattr(import_module(module_name), attribute)


def __dir__() -> list[str]:
    return sorted(__all__)
