"""The outcome of an activation maximisation: per target its image, trace and status."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.probe.base import FigureResult, short_repr
from convscope.probe.maximize.targets import (
    Target,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convscope.probe.maximize.ascent import MaximizeSettings
    from convscope.probe.maximize.targets import Target

# --------------------------------------------------------------------------------------------
# results


STATUSES = ("converged", "step-limit", "stalled", "vanishing-gradient")
"""How an optimisation ended: the objective rose and levelled off; it rose until the step
limit (more steps may raise it further); it did not rise; or it had no gradient."""

ROSE = ("converged", "step-limit")
"""The statuses of a target whose objective rose: its image is a result."""


@dataclass(frozen=True)
class TargetResult:
    """The outcome for one target: its best image, trace, scores and status.

    ``image`` is in display space (``H x W`` gray or ``H x W x 3`` RGB, values in
    [0, 1]); ``input`` is the same image as the model takes it (``C x H x W``,
    normalised, in the model's channel order). ``trace`` holds the objective per step
    for each start (``starts x steps``, on the randomly transformed images).
    """

    __repr__ = short_repr

    target: Target
    image: np.ndarray
    input: np.ndarray
    trace: np.ndarray
    start_score: float
    score: float
    prob: float | None
    top: list[tuple[str, float]]
    status: str
    message: str
    steps: int
    best_start: int
    start_scores: np.ndarray
    scores: np.ndarray

    @property
    def drawn(self) -> bool:
        """Whether the image is worth showing: it had a gradient and its score rose."""
        return self.status != "vanishing-gradient" and self.score > self.start_score

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (no images)."""
        return {
            "target": self.target.name,
            "kind": self.target.kind,
            "index": self.target.index,
            "layer": self.target.layer,
            "status": self.status,
            "message": self.message,
            "start_score": _num(self.start_score),
            "score": _num(self.score),
            "prob": None if self.prob is None else _num(self.prob),
            "top": [[name, _num(p)] for name, p in self.top],
            "steps": self.steps,
            "best_start": self.best_start,
            "start_scores": [_num(v) for v in self.start_scores],
            "scores": [_num(v) for v in self.scores],
        }


def _num(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


@dataclass(frozen=True)
class MaximizeResult(FigureResult):
    """Synthesised inputs for several targets of one model; draws itself as a grid."""

    model: str
    objective: str
    param: str
    settings: MaximizeSettings
    targets: list[TargetResult]
    channels: int
    seconds: float
    model_weights: str = ""

    def figure(self, **options: Any) -> Figure:
        """One panel per target with its name and score, and a convergence trace below.

        See :func:`convscope.render.maximize.plot_maximize` for the options.
        """
        from convscope.render.maximize import plot_maximize

        return plot_maximize(self, **options)

    def trace_figure(self, **options: Any) -> Figure:
        """The objective per step of every start of every target."""
        from convscope.render.maximize import plot_traces

        return plot_traces(self, **options)

    @property
    def inputs(self) -> np.ndarray:
        """The best image of every target as the model takes it, ``N x C x H x W``."""
        return np.stack([t.input for t in self.targets])

    @property
    def ok(self) -> bool:
        """Whether the objective of every target rose (converged or reached the step limit)."""
        return all(t.status in ROSE for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata: model, objective, settings and one record per target."""
        probs = [t.prob for t in self.targets if t.prob is not None]
        return {
            "model": self.model,
            "weights": self.model_weights,
            "objective": self.objective,
            "param": self.param,
            "seconds": round(self.seconds, 3),
            "settings": self.settings.to_dict(),
            "mean_target_prob": _num(float(np.mean(probs))) if probs else None,
            "targets": [t.to_dict() for t in self.targets],
        }

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.model}: activation maximisation ({self.objective})")
        for column in ("target", "status", "start", "score", "p(target)", "top 3", "steps"):
            numeric = column in ("start", "score", "p(target)", "steps")
            table.add_column(
                column, justify="right" if numeric else "left", no_wrap=column != "top 3"
            )
        for t in self.targets:
            top = ", ".join(f"{name} ({p:.2f})" for name, p in t.top)
            prob = "" if t.prob is None else f"{t.prob:.3f}"
            style = {"converged": "green", "step-limit": "green", "stalled": "yellow"}.get(
                t.status, "red"
            )
            table.add_row(
                t.target.name,
                f"[{style}]{t.status}[/]",
                f"{t.start_score:.3g}",
                f"{t.score:.3g}",
                prob,
                top,
                str(t.steps),
            )
        return table
