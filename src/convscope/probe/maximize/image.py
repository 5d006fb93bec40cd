"""The images activation maximisation optimises, and what it does to them each step.

A 1/f-scaled Fourier spectrum with colour decorrelation for RGB (the idea of Lucid's
``param/spatial.py`` and ``param/color.py``) or a pixel-space parameter, both through a
sigmoid so every step is a valid image; the random jitter, scale and rotation, the blur
and total variation that keep the result readable; and normalisation to the model input.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from convscope.data.preprocess import InputSpec

if TYPE_CHECKING:
    from convscope.probe.maximize.ascent import MaximizeSettings

#: Lucid's square root of the ImageNet colour covariance (columns: decorrelated -> RGB).
COLOR_CORRELATION_SVD_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)


def rfft2d_freqs(height: int, width: int) -> np.ndarray:
    """Spatial frequency magnitude (cycles per pixel) of each ``rfft2`` coefficient."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def color_decorrelation() -> torch.Tensor:
    """3x3 matrix taking decorrelated colour to RGB, columns scaled to unit max norm."""
    matrix = COLOR_CORRELATION_SVD_SQRT
    return torch.from_numpy(matrix / np.max(np.linalg.norm(matrix, axis=0)))


class ImageParam:
    """A batch of images as an unconstrained tensor; :meth:`pixels` maps it into [0, 1].

    ``pixel``: the tensor is the pre-sigmoid image. ``fourier``: it is a spectrum scaled
    by 1/f; natural images have about that spectrum, so the parameters are roughly
    whitened and gradient steps no longer favour the many high frequencies (the noise
    of plain pixel ascent). With three channels the channels are decorrelated colours,
    mixed into RGB by :func:`color_decorrelation` before the sigmoid.

    Start images are random, with pre-sigmoid pixels of standard deviation ``sd``
    whatever the size: distinct starts, and no ReLU unit dead at all of them, as units
    can be on a flat gray image.
    """

    FOURIER_MAGIC = 4.0  # Lucid's divisor that keeps the initial spectrum's image small

    def __init__(
        self,
        shape: tuple[int, int, int, int],
        kind: str,
        decorrelate: bool,
        generator: torch.Generator,
        sd: float,
    ) -> None:
        self.shape = shape
        self.kind = kind
        n, c, h, w = shape
        self.decorrelate = decorrelate and c == 3
        self.color = color_decorrelation() if self.decorrelate else None
        if kind == "fourier":
            freqs = rfft2d_freqs(h, w)
            self.freqs = torch.from_numpy(freqs).float()
            scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w))
            self.scale = torch.from_numpy(scale).float()[None, None, :, :, None]
            self.tensor = torch.randn((n, c, *freqs.shape, 2), generator=generator)
        else:
            self.tensor = torch.randn(shape, generator=generator)
        with torch.no_grad():  # starts whose pre-sigmoid pixels have standard deviation sd
            spread = float(self.pre_sigmoid().std()) if n * c * h * w > 1 else 1.0
            self.tensor.mul_(sd / spread if spread > 0 else 0.0)
        self.tensor.requires_grad_(True)

    def pre_sigmoid(self) -> torch.Tensor:
        """The image before the sigmoid (decorrelated colours already mixed into RGB)."""
        h, w = self.shape[2:]
        if self.kind == "fourier":
            spectrum = torch.view_as_complex(self.scale * self.tensor)
            image = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho") / self.FOURIER_MAGIC
        else:
            image = self.tensor
        if self.color is not None:
            image = torch.einsum("nchw,dc->ndhw", image, self.color)
        return image

    def pixels(self) -> torch.Tensor:
        """The images in [0, 1], ``N x C x H x W``, RGB order."""
        return torch.sigmoid(self.pre_sigmoid())

    @torch.no_grad()
    def blur_(self, sigma: float) -> None:
        """Blur the images in place with a Gaussian of ``sigma`` pixels (before the sigmoid).

        In Fourier space this is exact: the spectrum is multiplied by the Gaussian's
        frequency response ``exp(-2 pi^2 sigma^2 f^2)``.
        """
        if sigma <= 0:
            return
        if self.kind == "fourier":
            response = torch.exp(-2 * math.pi**2 * sigma**2 * self.freqs**2)
            self.tensor.mul_(response[None, None, :, :, None])
            return
        self.tensor.copy_(gaussian_blur(self.tensor, sigma))


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``N x C x H x W`` images blurred per channel by a Gaussian (reflected borders)."""
    radius = max(1, min(math.ceil(2 * sigma), min(images.shape[-2:]) - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def resolve_param(param: str) -> str:
    """``auto`` -> ``fourier`` (for gray too: it gives smoother, more readable digits)."""
    return "fourier" if param == "auto" else param


# --------------------------------------------------------------------------------------------
# transforms and penalties


def random_affine(
    images: torch.Tensor,
    settings: MaximizeSettings,
    generator: torch.Generator,
    padding: str,
) -> torch.Tensor:
    """Each image jittered, scaled and rotated at random, in one ``grid_sample`` call."""
    n, _, h, w = images.shape
    if settings.jitter == 0 and settings.scale == 0 and settings.rotate == 0:
        return images

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    shift = settings.jitter
    tx = torch.randint(-shift, shift + 1, (n,), generator=generator).float() * 2 / w
    ty = torch.randint(-shift, shift + 1, (n,), generator=generator).float() * 2 / h
    zoom = uniform(1 - settings.scale, 1 + settings.scale)
    angle = uniform(-settings.rotate, settings.rotate) * math.pi / 180
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], dim=1), torch.stack([sin, cos, ty], dim=1)], dim=1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode=padding, align_corners=False)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy


def _normalize(pixels: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """RGB pixels in [0, 1] -> the model's input (BGR flip if asked, then mean/std)."""
    if spec.channel_order == "BGR" and spec.channels == 3:
        pixels = pixels.flip(1)
    mean = torch.tensor(spec.mean, dtype=pixels.dtype).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=pixels.dtype).view(1, -1, 1, 1)
    return (pixels - mean) / std
