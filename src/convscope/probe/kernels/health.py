"""Health numbers of a layer's kernels: norms, dead kernels, near-duplicates, high frequencies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ConvscopeError
from convscope.probe.base import FigureResult
from convscope.probe.kernels.weights import _finite_kernels

if TYPE_CHECKING:
    from matplotlib.figure import Figure


DUPLICATE_COSINE = 0.95
"""Two kernels are near-duplicates when the cosine similarity of their weights exceeds this."""

DEAD_RELATIVE = 0.01
DEAD_ABSOLUTE = 1e-8
"""A kernel is dead when its L2 norm is at most ``max(DEAD_ABSOLUTE, DEAD_RELATIVE * median)``."""

HIGH_FREQ_CUTOFF = 0.25
"""Half the Nyquist frequency (0.5 cycles per pixel): the edge of "high" frequencies."""


def high_freq_mask(height: int, width: int) -> np.ndarray:
    """DFT bins of an ``height x width`` kernel whose frequency exceeds half the Nyquist.

    A bin's frequency is ``max(|fy|, |fx|)`` in cycles per pixel (``numpy.fft.fftfreq``);
    it is high when above :data:`HIGH_FREQ_CUTOFF` (0.25; the Nyquist frequency is 0.5).
    """
    fy = np.abs(np.fft.fftfreq(height))[:, None]
    fx = np.abs(np.fft.fftfreq(width))[None, :]
    return np.maximum(fy, fx) > HIGH_FREQ_CUTOFF + 1e-12


def high_freq_energy(weights: np.ndarray) -> np.ndarray:
    """Per kernel, the share of its spectral energy above half the Nyquist frequency.

    Energy is ``|DFT|^2`` of each input channel's ``H x W`` slice (the kernel at its own
    size, no padding), summed over the input channels; the share is the energy in the
    bins of :func:`high_freq_mask` over the total. A checkerboard gives (close to) 1, a
    constant kernel 0, white noise on average the share of high bins
    (:func:`white_noise_high_freq_energy`). A zero or non-finite kernel gives NaN.
    """
    w = np.asarray(weights, dtype=np.float64)
    mask = high_freq_mask(*w.shape[2:])
    power = np.abs(np.fft.fft2(np.where(np.isfinite(w), w, 0.0))) ** 2
    total = power.sum(axis=(1, 2, 3))
    high = (power * mask).sum(axis=(1, 2, 3))
    share = np.divide(high, total, out=np.full(len(w), np.nan), where=total > 0)
    share[~_finite_kernels(w)] = np.nan
    return share


def white_noise_high_freq_energy(height: int, width: int) -> float:
    """The high-frequency share white noise has on average: the fraction of high bins."""
    return float(high_freq_mask(height, width).mean())


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
    - ``high_freq``: share of spectral energy above half the Nyquist frequency
      (:func:`high_freq_energy`); ``noisy`` when above white noise's average share
      ``white_noise``, i.e. rougher than random weights.
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
    model_weights: str = ""

    def summary(self) -> dict[str, Any]:
        """The layer in a few numbers (counts, norm range, mean high-frequency share)."""
        live = self.finite & ~self.dead
        finite_norms = self.norms[self.finite]
        sim = self.similarity.copy()
        np.fill_diagonal(sim, np.nan)
        has_pairs = np.isfinite(sim).any()
        hf = self.high_freq[live & np.isfinite(self.high_freq)]
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
            "high_freq_energy_white_noise": self.white_noise,
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

    def to_dict(self) -> dict[str, Any]:
        """``{"kernels": [...], "summary": {...}}``, the ``health`` of ``kernels --json``."""
        return {"kernels": self.kernel_records(), "summary": self.summary()}

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
    finite = _finite_kernels(w)
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
    white = white_noise_high_freq_energy(*w.shape[2:])
    noisy = live & (np.nan_to_num(high, nan=-1.0) > white)
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
    )
