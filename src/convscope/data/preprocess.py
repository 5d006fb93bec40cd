"""What a model expects as input, and the conversion of pixel arrays to that.

An :class:`InputSpec` travels with every model (zoo metadata, checkpoints) so that
images, dataset samples and probes are always fed the way the model was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import torch

from convscope.errors import ImageError


class ResizePolicy(StrEnum):
    """How an image whose size differs from the model's input is brought to size.

    - ``letterbox``: scale (up or down) keeping the aspect ratio until it fits,
      then pad the rest with zeros, centred (MNIST-style digits stay whole).
    - ``pad``: pad centred with zeros; an image larger than the input is first
      scaled down to fit as in ``letterbox`` (LeNet-5 classic: 28x28 -> 32x32).
    - ``resize``: scale to exactly the input size; the aspect ratio is not kept.
    - ``center-crop``: scale the shorter side to ``resize_to``, then crop the
      centre (the torchvision ImageNet recipe).
    """

    LETTERBOX = "letterbox"
    PAD = "pad"
    RESIZE = "resize"
    CENTER_CROP = "center-crop"


@dataclass(frozen=True)
class InputSpec:
    """The input a model expects: size, channels, channel order and normalisation.

    Pixels are first scaled to [0, 1] (divided by 255), then normalised per channel
    with ``(x - mean) / std``.
    """

    channels: int
    height: int
    width: int
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    resize: ResizePolicy = ResizePolicy.LETTERBOX
    resize_to: int | None = None
    channel_order: str = "RGB"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) == 1 and self.channels == 3:
                values = values * 3
            if len(values) != self.channels:
                raise ValueError(f"{name} needs {self.channels} values, got {len(values)}")
            object.__setattr__(self, name, values)
        if any(s == 0 for s in self.std):
            raise ValueError("std values must be non-zero")
        object.__setattr__(self, "resize", ResizePolicy(self.resize))
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, got {self.channel_order!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one input."""
        return (self.channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (checkpoints, ``--json``)."""
        data = asdict(self)
        data["resize"] = str(self.resize)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            channels=int(data["channels"]),
            height=int(data["height"]),
            width=int(data["width"]),
            mean=tuple(data.get("mean", (0.0,))),
            std=tuple(data.get("std", (1.0,))),
            resize=ResizePolicy(data.get("resize", "letterbox")),
            resize_to=data.get("resize_to"),
            channel_order=data.get("channel_order", "RGB"),
            extra=dict(data.get("extra", {})),
        )

    def normalize(self, pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Turn sized uint8 pixels into the model's float input ``N x C x H x W``.

        Accepts ``N x H x W`` (gray), ``N x H x W x C`` or one image without the
        batch axis. The spatial size must already be ``height x width``; use
        :func:`convscope.data.images.fit_to_spec` for arbitrary images.
        """
        x = torch.as_tensor(pixels)
        if x.dtype != torch.uint8:
            raise ImageError(f"expected uint8 pixels, got {x.dtype}")
        if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 3) and x.shape[0] == self.height):
            x = x.unsqueeze(0)
        if x.ndim == 3:
            x = x.unsqueeze(-1)
        if x.ndim != 4:
            raise ImageError(f"expected an image batch N x H x W [x C], got shape {tuple(x.shape)}")
        n, h, w, c = x.shape
        if (h, w) != (self.height, self.width):
            raise ImageError(
                f"images are {h}x{w} but the model takes {self.height}x{self.width}; "
                "convert them with convscope.data.images.fit_to_spec first"
            )
        if c != self.channels:
            if c == 1 and self.channels == 3:
                x = x.expand(n, h, w, 3)
            else:
                raise ImageError(f"images have {c} channels but the model takes {self.channels}")
        x = x.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        if self.channel_order == "BGR" and self.channels == 3:
            x = x.flip(1)
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return (x - mean) / std


MNIST_SPEC = InputSpec(channels=1, height=28, width=28)
