"""Health numbers of a layer's kernels: norms, dead kernels, near-duplicates, high frequencies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ConvscopeError
from convscope.probe.base import FigureResult
from convscope.probe.kernels.arrays import finite_kernels

if TYPE_CHECKING:
    from matplotlib.figure import Figure


DUPLICATE_COSINE = 0.95
"""Two kernels are near-duplicates when the cosine similarity of their weights exceeds this."""

DEAD_RELATIVE = 0.01
DEAD_ABSOLUTE = 1e-8
"""A kernel is dead when its L2 norm is at most ``max(DEAD_ABSOLUTE, DEAD_RELATIVE * median)``."""

HIGH_FREQ_CUTOFF = 0.25
"""Half the Nyquist frequency (0.5 cycles per pixel): the edge of "high" frequencies."""

SPECTRUM_GRID = 64
"""Side of the frequency grid a kernel's spectrum is read on (the kernel zero-padded to it)."""

NOISE_QUANTILE = 0.95
"""A kernel is noisy when its high-frequency share exceeds this quantile of white noise's."""

_NOISE_DRAWS = 20_000


def spectrum_grid(height: int, width: int) -> int:
    """The frequency grid's side for an ``height x width`` kernel: 64, or the kernel's size."""
    return max(SPECTRUM_GRID, height, width)


def high_freq_mask(height: int, width: int) -> np.ndarray:
    """Bins of the frequency grid of an ``height x width`` kernel above half the Nyquist.

    The grid is :func:`spectrum_grid` square (the kernel zero-padded to it, so the bins
    sample its frequency response finely whatever its size). A bin's frequency is
    ``max(|fy|, |fx|)`` in cycles per pixel (``numpy.fft.fftfreq``); it is high when above
    :data:`HIGH_FREQ_CUTOFF` (0.25; the Nyquist frequency is 0.5).
    """
    n = spectrum_grid(height, width)
    f = np.abs(np.fft.fftfreq(n))
    return np.maximum(f[:, None], f[None, :]) > HIGH_FREQ_CUTOFF + 1e-12


def high_freq_energy(weights: np.ndarray) -> np.ndarray:
    """Per kernel, the share of its spectral energy above half the Nyquist frequency.

    Energy is ``|DFT|^2`` of each input channel's ``H x W`` slice zero-padded to the
    :func:`spectrum_grid` (its frequency response, finely sampled), summed over the input
    channels; the share is the energy in the bins of :func:`high_freq_mask` over the
    total. Read at the kernel's own size instead, a 3x3 kernel has only the frequencies 0
    and 1/3, so every kernel that is not constant — every edge detector — would have 8/9
    or more of its energy "high". A checkerboard gives close to 1, a smooth blob close to
    0, white noise on average :func:`white_noise_high_freq_energy`. A 1x1 kernel has no
    spatial frequencies (NaN), as have a zero or non-finite kernel. Computed exactly as a
    quadratic form (:func:`high_freq_matrix`), in memory the size of the weights.
    """
    w = np.asarray(weights, dtype=np.float64)
    height, width = w.shape[2:]
    if height * width == 1:
        return np.full(len(w), np.nan)
    flat = np.where(np.isfinite(w), w, 0.0).reshape(len(w), -1, height * width)
    quadratic = high_freq_matrix(height, width)
    high = np.einsum("oci,oci->o", flat @ quadratic, flat)  # sum over channels of x^T A x
    total = np.einsum("oci,oci->o", flat, flat)
    share = np.divide(high, total, out=np.full(len(w), np.nan), where=total > 0)
    share[~finite_kernels(w)] = np.nan
    return np.clip(share, 0.0, 1.0)


@lru_cache(maxsize=64)
def high_freq_matrix(height: int, width: int) -> np.ndarray:
    """The ``HW x HW`` matrix ``A`` with ``x^T A x / x^T x`` the share of a kernel slice's
    energy in the high bins of its zero-padded DFT (:func:`high_freq_mask`).

    By Parseval the zero-padded DFT's total energy is ``n^2 x^T x``, and the energy in the
    high bins is ``x^T (B B^H) x`` for the DFT rows ``B`` of those bins, so the share is
    exact without transforming any kernel: a 512 x 512 x 3 x 3 layer would otherwise take
    17 GB of 64 x 64 spectra.
    """
    n = spectrum_grid(height, width)
    mask = high_freq_mask(height, width).ravel()
    ys, xs = np.mgrid[0:height, 0:width]
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    phase = np.outer(ys.ravel(), fy.ravel()[mask]) + np.outer(xs.ravel(), fx.ravel()[mask])
    basis = np.exp(-2j * np.pi * phase)  # HW x (high bins)
    matrix = (basis @ basis.conj().T).real / (n * n)  # the mask is symmetric: real
    matrix.setflags(write=False)
    return matrix


def white_noise_high_freq_energy(height: int, width: int) -> float:
    """The high-frequency share white noise has on average: the fraction of high bins.

    (White noise's expected spectrum is flat, zero-padded or not.) NaN for 1x1 kernels.
    """
    if height * width == 1:
        return math.nan
    return float(high_freq_mask(height, width).mean())


def white_noise_distribution(channels: int, height: int, width: int) -> tuple[float, float, float]:
    """White noise's high-frequency share for kernels of this shape: (mean, std, 95% quantile).

    The share of a kernel ``x`` is ``x^T A x / x^T x`` for a fixed ``HW x HW`` matrix ``A``
    (the high-frequency part of the DFT); for Gaussian white noise over ``C`` input channels
    that is ``sum(l_i g_i) / sum(g_i)`` with ``l_i`` the eigenvalues of ``A`` and ``g_i``
    independent chi-squared variables of ``C`` degrees of freedom. Drawn 20,000 times with a
    fixed seed, so the numbers are the same on every call. The spread is what makes the
    noisy threshold fit the kernel size: a 3x3 kernel has 9 weights per channel and its
    share varies widely from one random kernel to the next; a 7x7 kernel's hardly does.
    """
    return _white_noise_distribution(int(channels), int(height), int(width))


@lru_cache(maxsize=64)
def _white_noise_distribution(channels: int, height: int, width: int) -> tuple[float, float, float]:
    if height * width == 1:
        return (math.nan, math.nan, math.nan)
    a = high_freq_matrix(height, width)
    eigenvalues = np.clip(np.linalg.eigvalsh(a), 0.0, 1.0)
    rng = np.random.default_rng(0)
    g = rng.chisquare(channels, size=(_NOISE_DRAWS, eigenvalues.size))
    share = (g @ eigenvalues) / g.sum(axis=1)
    return (
        float(eigenvalues.mean()),
        float(share.std()),
        float(np.quantile(share, NOISE_QUANTILE)),
    )


def cosine_similarity(weights: np.ndarray) -> np.ndarray:
    """``O x O`` cosine similarity of the flattened kernels (NaN for zero or non-finite ones)."""
    flat = np.asarray(weights, dtype=np.float64).reshape(len(weights), -1)
    good = np.isfinite(flat).all(axis=1)
    norms = np.linalg.norm(np.where(good[:, None], flat, 0.0), axis=1)
    ok = good & (norms > 0)
    unit = np.zeros_like(flat)
    unit[ok] = flat[ok] / norms[ok, None]
    sim = unit @ unit.T
    sim[~ok, :] = np.nan
    sim[:, ~ok] = np.nan
    return sim


def _none_if_nan(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


@dataclass(eq=False)
class KernelHealth(FigureResult):
    """Health numbers of a layer's kernels (arrays indexed by kernel).

    - ``norms``: L2 norm of each kernel (all its weights);
    - ``dead``: norm at most ``dead_threshold = max(1e-8, 0.01 x median norm)``;
    - ``duplicate_of``: the first earlier live kernel whose cosine similarity exceeds
      0.95, else -1;
    - ``high_freq``: share of spectral energy above half the Nyquist frequency, read on a
      fine frequency grid (:func:`high_freq_energy`); ``white_noise`` is what random
      (white-noise) kernels of the same size give on average;
    - ``noisy``: the share is above ``noise_threshold``, the 95% quantile of white noise's
      share for kernels of this shape (:func:`white_noise_distribution`): rougher than 19
      random kernels in 20, i.e. rougher than random weights at the 5% level.

    Measure and threshold are made to fit the kernel size. Small kernels are rough by
    nature: a 3x3 edge or line detector changes sign between neighbouring pixels. Read at
    its own size a 3x3 kernel has only the frequencies 0 and 1/3, so such a detector had
    all its energy "high", and against noise's *average* share half the 28 live stem
    kernels of ImageNet-trained EfficientNet-Lite0 came out "noisy". The share is now read
    on a fine frequency grid, and the threshold is a quantile of noise *of the same
    shape*: random 3x3 kernels (9 weights per channel) scatter widely around the average,
    7x7 ones hardly, so the threshold sits well above the average for 3x3 and close to it
    for 7x7. On that stem 2 of 28 remain above it, its two sharpest one-pixel line
    detectors, as rough as the roughest random kernels: a spectrum cannot tell those from
    noise, and that is said, not hidden. Whether a whole layer still looks like its random
    initialisation is ``high_freq_energy_z`` of :meth:`summary`: the layer's mean share
    minus white noise's, in standard errors of a mean over that many random kernels
    (about 0 for random weights; -12 for that stem, -11 for a trained LeNet's first layer).
    """

    model: str
    layer: str
    shape: tuple[int, ...]
    norms: np.ndarray
    dead: np.ndarray
    duplicate_of: np.ndarray
    high_freq: np.ndarray
    noisy: np.ndarray
    finite: np.ndarray
    similarity: np.ndarray
    dead_threshold: float
    white_noise: float
    duplicate_threshold: float = DUPLICATE_COSINE
    noise_threshold: float = math.nan
    white_noise_std: float = math.nan
    model_weights: str = ""

    def summary(self) -> dict[str, Any]:
        """The layer in a few numbers (counts, norm range, mean high-frequency share)."""
        live = self.finite & ~self.dead
        finite_norms = self.norms[self.finite]
        sim = self.similarity.copy()
        np.fill_diagonal(sim, np.nan)
        has_pairs = np.isfinite(sim).any()
        hf = self.high_freq[live & np.isfinite(self.high_freq)]
        z = None
        if hf.size and self.white_noise_std > 0:
            z = float((hf.mean() - self.white_noise) / (self.white_noise_std / math.sqrt(hf.size)))
        return {
            "kernels": len(self.norms),
            "dead": int(self.dead.sum()),
            "duplicates": int((self.duplicate_of >= 0).sum()),
            "noisy": int(self.noisy.sum()),
            "nonfinite": int((~self.finite).sum()),
            "norm_mean": _none_if_nan(float(finite_norms.mean())) if finite_norms.size else None,
            "norm_median": _none_if_nan(float(np.median(finite_norms)))
            if finite_norms.size
            else None,
            "norm_min": _none_if_nan(float(finite_norms.min())) if finite_norms.size else None,
            "norm_max": _none_if_nan(float(finite_norms.max())) if finite_norms.size else None,
            "dead_threshold": self.dead_threshold,
            "duplicate_threshold": self.duplicate_threshold,
            "max_cosine": float(np.nanmax(sim)) if has_pairs else None,
            "high_freq_cutoff": HIGH_FREQ_CUTOFF,
            "high_freq_energy_mean": float(hf.mean()) if hf.size else None,
            "high_freq_energy_white_noise": _none_if_nan(self.white_noise),
            "high_freq_noise_threshold": _none_if_nan(self.noise_threshold),
            "high_freq_noise_quantile": NOISE_QUANTILE,
            "high_freq_energy_z": z,
            "spectrum_grid": spectrum_grid(*self.shape[2:]),
        }

    def kernel_records(self) -> list[dict[str, Any]]:
        """One JSON-ready record per kernel."""
        return [
            {
                "index": i,
                "norm": _none_if_nan(float(self.norms[i])),
                "dead": bool(self.dead[i]),
                "duplicate_of": int(self.duplicate_of[i]) if self.duplicate_of[i] >= 0 else None,
                "high_freq_energy": _none_if_nan(float(self.high_freq[i])),
                "noisy": bool(self.noisy[i]),
                "finite": bool(self.finite[i]),
            }
            for i in range(len(self.norms))
        ]

    def problems(self) -> dict[int, str]:
        """What the check found wrong, by kernel index: ``{3: "dead", 7: "noisy (...)"}``."""
        found: dict[int, str] = {}
        for i in range(len(self.norms)):
            if not self.finite[i]:
                found[i] = "NaN/Inf"
                continue
            parts = []
            if self.dead[i]:
                parts.append("dead")
            if self.duplicate_of[i] >= 0:
                parts.append(f"near-duplicate of {int(self.duplicate_of[i])}")
            if self.noisy[i]:
                parts.append(f"noisy ({self.high_freq[i]:.0%} of its energy at high frequencies)")
            if parts:
                found[i] = ", ".join(parts)
        return found

    def to_dict(self) -> dict[str, Any]:
        """``{"kernels": [...], "summary": {...}}``, the ``health`` of ``kernels --json``."""
        return {"kernels": self.kernel_records(), "summary": self.summary()}

    def __rich__(self) -> Any:
        from convscope.render.kernels import health_table

        return health_table(self)

    def figure(self, **options: Any) -> Figure:
        """Norms, high-frequency shares and similarities (see ``kernel_health_figure``)."""
        from convscope.render.kernels import kernel_health_figure

        return kernel_health_figure(self, **options)


def kernel_health(
    weights: np.ndarray,
    *,
    model: str = "",
    layer: str = "",
    duplicate_threshold: float = DUPLICATE_COSINE,
    model_weights: str = "",
) -> KernelHealth:
    """Per-kernel norm, dead, near-duplicate and high-frequency numbers of ``O x I x H x W``.

    Definitions are those of :class:`KernelHealth`; kernels with NaN or infinity have
    NaN numbers, are neither dead, duplicate nor noisy, and count as ``nonfinite``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ConvscopeError(f"kernels must be out x in x H x W, got shape {w.shape}")
    finite = finite_kernels(w)
    norms = np.full(len(w), np.nan)
    norms[finite] = np.linalg.norm(w[finite].reshape(int(finite.sum()), -1), axis=1)
    median = float(np.median(norms[finite])) if finite.any() else 0.0
    threshold = max(DEAD_ABSOLUTE, DEAD_RELATIVE * median)
    dead = finite & (np.nan_to_num(norms, nan=np.inf) <= threshold)
    similarity = cosine_similarity(w)
    live = finite & ~dead
    duplicate_of = np.full(len(w), -1, dtype=np.int64)
    for i in np.flatnonzero(live):
        earlier = np.flatnonzero(live[:i] & (similarity[i, :i] > duplicate_threshold))
        if earlier.size:
            duplicate_of[i] = earlier[0]
    high = high_freq_energy(w)
    white, white_std, noise_threshold = white_noise_distribution(*w.shape[1:])
    noisy = live & (np.nan_to_num(high, nan=-1.0) > noise_threshold)
    return KernelHealth(
        model=model,
        model_weights=model_weights,
        layer=layer,
        shape=tuple(int(s) for s in w.shape),
        norms=norms,
        dead=dead,
        duplicate_of=duplicate_of,
        high_freq=high,
        noisy=noisy,
        finite=finite,
        similarity=similarity,
        dead_threshold=threshold,
        white_noise=white,
        duplicate_threshold=duplicate_threshold,
        noise_threshold=noise_threshold,
        white_noise_std=white_std,
    )
