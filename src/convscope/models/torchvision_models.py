"""torchvision classification models by name, with their ImageNet input spec and classes.

The metadata comes from torchvision's own weight enums, which ship with the
package, so nothing is downloaded unless ImageNet weights are asked for.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.errors import ModelError
from convscope.naming import close_matches


def classification_model_names() -> list[str]:
    """Names of torchvision's classification models (``torchvision.models.list_models``)."""
    import torchvision.models as tvm

    return sorted(tvm.list_models(module=tvm))


def _default_weights(name: str) -> Any:
    import torchvision.models as tvm

    try:
        return tvm.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None


def imagenet_input_spec(name: str) -> InputSpec:
    """The input spec torchvision's default weights for ``name`` were trained with."""
    weights = _default_weights(name)
    transforms = weights.transforms() if weights is not None else None
    crop = int(getattr(transforms, "crop_size", [224])[0])
    resize = int(getattr(transforms, "resize_size", [256])[0])
    mean = tuple(getattr(transforms, "mean", (0.485, 0.456, 0.406)))
    std = tuple(getattr(transforms, "std", (0.229, 0.224, 0.225)))
    return InputSpec(
        channels=3,
        height=crop,
        width=crop,
        mean=mean,
        std=std,
        resize=ResizePolicy.CENTER_CROP,
        resize_to=resize,
    )


def imagenet_class_names(name: str) -> tuple[str, ...] | None:
    """ImageNet category names from the weights' metadata, if torchvision has them."""
    weights = _default_weights(name)
    categories = weights.meta.get("categories") if weights is not None else None
    return tuple(categories) if categories else None


def build_torchvision(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build torchvision model ``name``; ``pretrained`` downloads its default weights."""
    import torchvision.models as tvm

    names = classification_model_names()
    if name not in names:
        raise ModelError(
            f"torchvision has no classification model {name!r}{close_matches(name, names)}"
        )
    weights = _default_weights(name) if pretrained else None
    try:
        return tvm.get_model(name, weights=weights, **kwargs)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        raise ModelError(
            f"cannot download torchvision weights for {name} ({exc}); "
            "download them elsewhere and pass --weights FILE"
        ) from exc
