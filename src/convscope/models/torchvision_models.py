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


def weights_names(name: str) -> list[str]:
    """The names of torchvision's weights for model ``name`` (``IMAGENET1K_V1``, ...)."""
    import torchvision.models as tvm

    try:
        enum = tvm.get_model_weights(name)
    except (ValueError, KeyError, AttributeError):
        return []
    return list(enum.__members__)


def torchvision_weights(name: str, weights: str, *, model: str | None = None) -> Any:
    """The weights enum member of torchvision model ``name`` that ``weights`` names.

    ``imagenet`` (any case) is the model's default weights; otherwise a member name such
    as ``IMAGENET1K_V2`` (any case, ``ResNet50_Weights.`` prefix allowed). An unknown
    name is an error listing the valid ones.
    """
    import torchvision.models as tvm

    label = model or f"torchvision:{name}"
    try:
        enum = tvm.get_model_weights(name)
    except (ValueError, KeyError, AttributeError):
        raise ModelError(f"torchvision has no pretrained weights for {label}") from None
    if weights.lower() == "imagenet":
        return enum.DEFAULT
    wanted = weights.removeprefix(f"{enum.__name__}.").upper()
    members = dict(enum.__members__)
    if wanted in members:
        return members[wanted]
    names = [n for n in members if n != "DEFAULT"]
    suggestions = close_matches(weights, ["imagenet", *names, *(n.lower() for n in names)])
    raise ModelError(
        f"{label} has no weights named {weights!r}: torchvision has {', '.join(names)}, and "
        f"imagenet (its default, {enum.DEFAULT.name}){suggestions}"
    )


def architecture_kwargs(name: str, weights: Any) -> dict[str, Any]:
    """Builder arguments that torchvision sets when it loads ``weights`` into ``name``.

    A checkpoint rebuilds the architecture from its recipe without the weights, so these
    must be in the recipe: GoogLeNet and Inception v3 take their pretrained weights with
    ``transform_input`` (inputs re-normalised inside) and without the auxiliary heads; the
    SWAG ViT and MaxViT weights are for larger inputs.
    """
    if name in ("googlenet", "inception_v3"):
        return {"transform_input": True, "aux_logits": False, "init_weights": False}
    min_size = weights.meta.get("min_size")
    if name.startswith("vit_") and min_size and min_size[0] != 224:
        return {"image_size": int(min_size[0])}
    if name.startswith("maxvit_") and min_size and tuple(min_size) != (224, 224):
        return {"input_size": list(min_size)}
    return {}


def imagenet_input_spec(name: str, weights: Any = None) -> InputSpec:
    """The input spec of torchvision's ``weights`` for ``name`` (default: its default weights)."""
    weights = weights if weights is not None else _default_weights(name)
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


def imagenet_class_names(name: str, weights: Any = None) -> tuple[str, ...] | None:
    """ImageNet category names from the weights' metadata, if torchvision has them."""
    weights = weights if weights is not None else _default_weights(name)
    categories = weights.meta.get("categories") if weights is not None else None
    return tuple(categories) if categories else None


def build_torchvision(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build torchvision model ``name`` (random init; ``kwargs`` go to its builder).

    ``pretrained`` (old checkpoints' recipes) takes the default weights through
    torchvision's own download; ``--weights imagenet`` goes through
    :func:`convscope.models.pretrained.load_pretrained` instead.
    """
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
