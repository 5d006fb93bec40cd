"""Which model separates the classes best, answered with the scores (and seeds) behind it.

Each model's score is taken at the last epoch its runs share; with several seeds per
model the mean and a 95% Student-t interval across seeds are given. Models are ranked
by their mean rank over the four class-separation scores (k-NN accuracy in the hidden
space and in the map, silhouette, linear probe), ties broken by hidden-space k-NN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from convscope.embed.runs import RunEmbedding
from convscope.embed.scores import SCORE_LABELS, SCORE_NAMES, mean_and_interval

RANKED_BY = ("knn_hidden", "knn_map", "silhouette", "linear_probe")


@dataclass(frozen=True)
class ModelScores:
    """One model's final-epoch scores: mean and 95% half-width over its ``seeds`` runs.

    ``mean_rank`` is its rank averaged over the :data:`RANKED_BY` scores (1 = best on all).
    """

    model: str
    seeds: int
    epoch: int
    mean: dict[str, float]
    half_width: dict[str, float]
    mean_rank: float = 1.0

    def text(self, score: str) -> str:
        """``0.871`` or ``0.871 ± 0.012`` (with seeds)."""
        if self.seeds > 1:
            return f"{self.mean[score]:.3f} ± {self.half_width[score]:.3f}"
        return f"{self.mean[score]:.3f}"


def model_scores(embeddings: Sequence[RunEmbedding]) -> list[ModelScores]:
    """Per model, the scores at the last epoch every one of its runs reached, ranked best first."""
    by_model: dict[str, list[RunEmbedding]] = {}
    for embedding in embeddings:
        if embedding.scores:
            by_model.setdefault(embedding.model, []).append(embedding)
    results = []
    for model, runs in by_model.items():
        epoch = min(max(r.scores) for r in runs)
        values = {
            s: [getattr(r.scores[epoch], s) for r in runs if epoch in r.scores] for s in SCORE_NAMES
        }
        stats = {s: mean_and_interval(v) for s, v in values.items()}
        results.append(
            ModelScores(
                model=model,
                seeds=len(runs),
                epoch=epoch,
                mean={s: m for s, (m, _) in stats.items()},
                half_width={s: h for s, (_, h) in stats.items()},
            )
        )
    return _ranked(results)


def _ranked(results: list[ModelScores]) -> list[ModelScores]:
    if not results:
        return []
    ranks = np.zeros(len(results))
    for score in RANKED_BY:
        values = np.array([-r.mean[score] for r in results])
        ranks += values.argsort(kind="stable").argsort() + 1
    ranks /= len(RANKED_BY)
    order = sorted(range(len(results)), key=lambda i: (ranks[i], -results[i].mean["knn_hidden"]))
    return [replace(results[i], mean_rank=float(ranks[i])) for i in order]


def verdict(ranked: Sequence[ModelScores]) -> str:
    """A sentence or three that names the best model and cites the numbers."""
    if not ranked:
        return "No separation scores: the runs recorded no hidden layer."
    best = ranked[0]
    if len(ranked) == 1:
        return (
            f"Only {best.model} was mapped: at epoch {best.epoch} its hidden layer reaches "
            f"k-NN accuracy {best.text('knn_hidden')} and linear-probe accuracy "
            f"{best.text('linear_probe')}."
        )
    others = ", ".join(
        f"{r.model} (mean rank {r.mean_rank:.2f}; k-NN {r.text('knn_hidden')})" for r in ranked[1:]
    )
    lines = [
        f"{best.model} separates the classes best at epoch {best.epoch} "
        f"(mean rank {best.mean_rank:.2f} of {len(ranked)}): "
        f"{SCORE_LABELS['knn_hidden']} {best.text('knn_hidden')}, "
        f"linear probe {best.text('linear_probe')}, silhouette {best.text('silhouette')}, "
        f"k-NN in the 2-D map {best.text('knn_map')}. Then {others}."
    ]
    runner = ranked[1]
    seeds = min(best.seeds, runner.seeds)
    if seeds > 1:
        gap = best.mean["knn_hidden"] - runner.mean["knn_hidden"]
        spread = best.half_width["knn_hidden"] + runner.half_width["knn_hidden"]
        if gap > spread:
            lines.append(
                f"Its lead over {runner.model} in hidden-space k-NN accuracy ({gap:.3f}) is larger "
                f"than the two 95% intervals over {seeds} seeds together ({spread:.3f})."
            )
        else:
            lines.append(
                f"Its lead over {runner.model} ({gap:.3f}) is within the seed-to-seed spread "
                f"({spread:.3f} over {seeds} seeds): the two are not clearly different."
            )
    else:
        lines.append(
            "One seed per model: differences of a few points may be noise; "
            "run the study with --seeds 3 for confidence intervals."
        )
    lines.append(
        f"Ranked by the mean of each model's rank on {', '.join(SCORE_LABELS[s] for s in RANKED_BY)}."
    )
    return " ".join(lines)
