"""Which model separates the classes best, judged by what each model's hidden layer learned.

An untrained network already separates the classes fairly well in its hidden layer (a
random projection keeps much of the pixel neighbourhoods: on Fashion-MNIST, k-NN about
0.72 and a linear probe about 0.78 at epoch 0), so the scores alone say little about
training. Each model is therefore ranked by what its hidden layer *gained* over its own
epoch 0, at the last epoch its runs share: its mean rank over the gains in four
class-separation scores (k-NN accuracy in the hidden space and in the map, silhouette,
linear probe). With several seeds per model, means and 95% Student-t intervals across
seeds. A model whose test accuracy is near chance, or whose scores did not rise above
epoch 0, has "not learned yet" and is ranked after every model that learned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from convscope.embed.runs import RunEmbedding
from convscope.embed.scores import SCORE_LABELS, SCORE_NAMES, mean_and_interval
from convscope.store.results import RunResult

RANKED_BY = ("knn_hidden", "knn_map", "silhouette", "linear_probe")
NEAR_CHANCE = 0.1
"""Test accuracy below chance + this share of the way to 1 counts as near chance."""
MIN_GAIN = 0.01
"""A model whose mean gain over the ranked scores is at most this has not learned."""
BN_GAP = 0.1
"""Training accuracy this far above validation accuracy is flagged in batch-norm models."""
SETTLED = 0.01
"""Running statistics are settled once their initial values weigh less than this."""
FEW_UPDATES = 500
"""Fewer optimizer steps than this per model make the comparison an early look."""


@dataclass(frozen=True)
class ModelScores:
    """One model's scores at ``epoch`` and their gain over epoch 0, over its ``seeds`` runs.

    ``mean``/``half_width`` are the scores at ``epoch`` (see :func:`_one_model`), ``baseline`` the same scores at
    epoch 0 and ``gain`` the mean per-run difference (with ``gain_half_width``);
    ``mean_rank`` is the model's rank averaged over the gains in :data:`RANKED_BY`
    (1 = the largest gain on all four). ``learned`` is False with ``why_not`` saying why.
    """

    model: str
    seeds: int
    epoch: int
    mean: dict[str, float]
    half_width: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    gain: dict[str, float] = field(default_factory=dict)
    gain_half_width: dict[str, float] = field(default_factory=dict)
    test_acc: float | None = None
    test_acc_half_width: float = 0.0
    train_acc: float | None = None
    val_acc: float | None = None
    chance: float | None = None
    updates: int | None = None
    batch_norm_momentum: float | None = None
    learned: bool = True
    why_not: str = ""
    mean_rank: float = 1.0
    left_out: tuple[str, ...] = ()
    """One line per run of this model that is not scored (interrupted, or stopped early)."""

    def text(self, score: str) -> str:
        """``0.871`` or ``0.871 ± 0.012`` (with seeds)."""
        return _with_interval(self.mean[score], self.half_width[score], self.seeds, "")

    def gain_text(self, score: str) -> str:
        """``+0.045`` or ``+0.045 ± 0.010`` (with seeds)."""
        return _with_interval(self.gain[score], self.gain_half_width[score], self.seeds, "+")

    def change_text(self, score: str) -> str:
        """``+0.045 (0.720 → 0.765)``: the gain and where it started and ended."""
        return f"{self.gain_text(score)} ({self.baseline[score]:.3f} → {self.mean[score]:.3f})"

    def test_text(self) -> str:
        """The test accuracy as text (``–`` when the runs have none)."""
        if self.test_acc is None:
            return "–"
        return _with_interval(self.test_acc, self.test_acc_half_width, self.seeds, "")

    def to_dict(self) -> dict[str, Any]:
        """The ranking entry of ``convscope report --json`` (keys fixed by the contract)."""
        return {
            "model": self.model,
            "test_acc": None if self.test_acc is None else round(self.test_acc, 4),
            "learned": self.learned,
            "epoch": self.epoch,
            "scores": {s: round(v, 4) for s, v in self.mean.items()},
            "gain_over_epoch0": {s: round(v, 4) for s, v in self.gain.items()},
            "mean_rank": round(self.mean_rank, 4),
        }


def _with_interval(value: float, half_width: float, seeds: int, sign: str) -> str:
    text = f"{value:{sign}.3f}"
    return f"{text} ± {half_width:.3f}" if seeds > 1 else text


def model_scores(
    embeddings: Sequence[RunEmbedding], runs: Sequence[RunResult] = ()
) -> list[ModelScores]:
    """Per model, its scores, gains and test accuracy; ranked, models that learned first.

    ``runs`` (matched to the embeddings by run id) give the test accuracy, the number
    of updates and the batch-norm facts; without them only the gains decide ``learned``.
    """
    facts = {run.run_id: run for run in runs}
    by_model: dict[str, list[RunEmbedding]] = {}
    for embedding in embeddings:
        if embedding.scores:
            by_model.setdefault(embedding.model, []).append(embedding)
    results = [
        _one_model(model, group, [facts[e.run_id] for e in group if e.run_id in facts])
        for model, group in by_model.items()
    ]
    return _ranked(results)


def _one_model(model: str, group: list[RunEmbedding], runs: list[RunResult]) -> ModelScores:
    """One model's scores over its runs, at the last epoch of the runs that decide.

    The runs that decide are the model's finished runs (all its runs when none has
    finished, as in a study in progress), less those that recorded nothing after epoch 0
    when another did. The model is scored at the last epoch all of them reached (the
    shortest of them decides, as early stopping may end seeds at different epochs), on
    them alone; its test accuracy, updates and curves come from the same runs. A run
    that is not scored cannot make the model look untrained: ``left_out`` names it,
    together with the runs of the model's study that its results left out.
    """
    facts = {r.run_id: r for r in runs}
    pool = [e for e in group if e.run_id in facts and facts[e.run_id].status == "finished"]
    pool = pool or group
    start = max(min(e.scores) for e in pool)
    pool = [e for e in pool if max(e.scores) > start] or pool
    epoch = min(max(e.scores) for e in pool)
    scored = [e for e in pool if epoch in e.scores and start in e.scores]
    used = [facts[e.run_id] for e in scored if e.run_id in facts]
    names = {e.run_id for e in group}
    kept = {e.run_id for e in scored}
    left_out = [
        f"{e.run_name} (run {e.run_id}, recorded up to epoch {max(e.scores)}): not scored; "
        f"{model} is scored at epoch {epoch} on its {len(scored)} other run"
        f"{'s' if len(scored) != 1 else ''}"
        for e in group
        if e.run_id not in kept
    ]
    left_out += [line for r in runs for i, line in r.left_out.items() if i not in names]
    stats = {
        s: mean_and_interval([getattr(e.scores[epoch], s) for e in scored]) for s in SCORE_NAMES
    }
    gains = {
        s: mean_and_interval(
            [getattr(e.scores[epoch], s) - getattr(e.scores[start], s) for e in scored]
        )
        for s in SCORE_NAMES
    }
    tests = [r.test_acc for r in used if r.test_acc is not None]
    test, test_hw = mean_and_interval(tests) if tests else (None, 0.0)
    result = ModelScores(
        model=model,
        seeds=len(scored),
        epoch=epoch,
        mean={s: m for s, (m, _) in stats.items()},
        half_width={s: h for s, (_, h) in stats.items()},
        baseline={s: float(np.mean([getattr(e.scores[start], s) for e in scored])) for s in stats},
        gain={s: m for s, (m, _) in gains.items()},
        gain_half_width={s: h for s, (_, h) in gains.items()},
        test_acc=test,
        test_acc_half_width=test_hw,
        train_acc=_mean([r.final("train_acc") for r in used]),
        val_acc=_mean([r.final("val_acc") for r in used]),
        chance=used[0].chance if used else None,
        updates=min((r.updates for r in used if r.updates is not None), default=None),
        batch_norm_momentum=used[0].batch_norm_momentum if used else None,
        left_out=tuple(dict.fromkeys(left_out)),
    )
    why_not = _why_not_learned(result, start)
    return replace(result, learned=not why_not, why_not=why_not)


def _mean(values: Sequence[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return float(np.mean(found)) if found else None


def _why_not_learned(scores: ModelScores, start: int) -> str:
    """Why ``scores`` shows a model that has not learned yet ("" when it has)."""
    if scores.epoch == start:
        return f"only epoch {start} was recorded"
    if scores.test_acc is not None and scores.chance is not None:
        near = scores.chance + NEAR_CHANCE * (1 - scores.chance)
        if scores.test_acc < near:
            return f"test accuracy {scores.test_acc:.3f} is near chance ({scores.chance:.2f})"
    mean_gain = float(np.mean([scores.gain[s] for s in RANKED_BY]))
    if mean_gain <= MIN_GAIN:
        return (
            f"its hidden layer separates the classes no better than at epoch {start} "
            f"(mean gain {mean_gain:+.3f})"
        )
    return ""


def _ranked(results: list[ModelScores]) -> list[ModelScores]:
    if not results:
        return []
    ranks = np.zeros(len(results))
    for score in RANKED_BY:
        values = np.array([-r.gain[score] for r in results])
        ranks += values.argsort(kind="stable").argsort() + 1
    ranks /= len(RANKED_BY)
    order = sorted(
        range(len(results)),
        key=lambda i: (not results[i].learned, ranks[i], -results[i].gain["knn_hidden"]),
    )
    return [replace(results[i], mean_rank=float(ranks[i])) for i in order]


def ranking_document(ranked: Sequence[ModelScores]) -> dict[str, Any]:
    """What ``convscope report --json`` prints: the verdict and the ranking it rests on."""
    return {"verdict": verdict(ranked), "ranking": [r.to_dict() for r in ranked]}


def verdict(ranked: Sequence[ModelScores]) -> str:
    """Sentences that name the model that learned to separate the classes best, with numbers.

    The first sentence names a model that learned (or says that none has), with its test
    accuracy; then the others, the models that have not learned yet and why, unsettled
    batch-norm statistics, the runs left out of the comparison, and how much it can tell.
    """
    if not ranked:
        return "No separation scores: the runs recorded no hidden layer."
    learned = [r for r in ranked if r.learned]
    lines = [_first_sentence(learned, ranked)]
    if len(learned) > 1:
        lines.append("Then " + "; ".join(_short(r) for r in learned[1:]) + ".")
    for r in ranked:
        if not r.learned:
            test = "" if "test accuracy" in r.why_not else f" (test accuracy {r.test_text()})"
            lines.append(
                f"{r.model} has not learned yet: {r.why_not}{test}, so it is ranked after the "
                "models that learned, whatever its scores."
            )
    lines += _batch_norm_notes(ranked)
    left_out = list(dict.fromkeys(line for r in ranked for line in r.left_out))
    if left_out:
        lines.append(f"Left out of this comparison: {'; '.join(left_out)}.")
    lines += _power_notes(learned, ranked)
    lines.append(
        "Ranked by the mean of each model's rank on the gain over its own epoch 0 in "
        f"{', '.join(SCORE_LABELS[s] for s in RANKED_BY)}; models that have not learned last."
    )
    return " ".join(lines)


def _after(r: ModelScores) -> str:
    updates = f" ({r.updates:,} updates)" if r.updates else ""
    return f"after {r.epoch} epoch{'s' if r.epoch != 1 else ''}{updates}"


def _first_sentence(learned: Sequence[ModelScores], ranked: Sequence[ModelScores]) -> str:
    if not learned:
        return (
            f"No model has learned yet {_after(ranked[0])}: every one is near chance or "
            "separates the classes no better than before training; train longer before "
            "comparing them."
        )
    best = learned[0]
    gains = (
        f"its hidden layer gained {best.change_text('knn_hidden')} in k-NN accuracy and "
        f"{best.change_text('linear_probe')} in linear-probe accuracy over its own epoch 0"
    )
    if len(ranked) == 1:
        head = f"Only {best.model} was mapped: {_after(best)}"
    elif len(learned) == 1:
        head = f"Only {best.model} has learned: {_after(best)}"
    else:
        head = f"{best.model} separates the classes best {_after(best)}:"
    return f"{head} {gains}, with test accuracy {best.test_text()}."


def _short(r: ModelScores) -> str:
    return (
        f"{r.model} (test accuracy {r.test_text()}; k-NN {r.change_text('knn_hidden')}, "
        f"mean rank {r.mean_rank:.2f})"
    )


def settling_updates(momentum: float) -> int:
    """Updates after which running statistics keep under :data:`SETTLED` of their start."""
    return math.ceil(math.log(SETTLED) / math.log(1 - momentum))


def _batch_norm_notes(ranked: Sequence[ModelScores]) -> list[str]:
    """Why batch-norm models validate far below their training accuracy after few updates."""
    flagged = [
        r
        for r in ranked
        if r.batch_norm_momentum
        and r.updates is not None
        and r.train_acc is not None
        and r.val_acc is not None
        and r.train_acc - r.val_acc > BN_GAP
        and r.updates < settling_updates(r.batch_norm_momentum)
    ]
    if not flagged:
        return []
    momentum = flagged[0].batch_norm_momentum or 0.0
    updates = min(r.updates or 0 for r in flagged)
    names = ", ".join(
        f"{r.model} (validation {r.val_acc:.3f}, training {r.train_acc:.3f})" for r in flagged
    )
    verb = "validates" if len(flagged) == 1 else "validate"
    return [
        f"{names} {verb} far below training accuracy because the batch-norm "
        f"running statistics have not settled: with momentum {1 - momentum:.2f} (Keras' "
        f"convention), after {updates:,} updates they still carry "
        f"{(1 - momentum) ** updates:.0%} of their initial values; about "
        f"{settling_updates(momentum):,} updates bring that under {SETTLED:.0%}."
    ]


def _power_notes(learned: Sequence[ModelScores], ranked: Sequence[ModelScores]) -> list[str]:
    """How much the comparison can tell: seeds, intervals and the number of updates.

    Said whenever models were compared and at least one learned: a single model that
    learned, on one seed, leads an under-powered comparison as much as a close race does.
    """
    if not learned or len(ranked) < 2:
        return []
    best = learned[0]
    runner = learned[1] if len(learned) > 1 else None
    notes = []
    seeds = min(best.seeds, runner.seeds) if runner else best.seeds
    if seeds > 1 and runner:
        gap = best.gain["knn_hidden"] - runner.gain["knn_hidden"]
        spread = best.gain_half_width["knn_hidden"] + runner.gain_half_width["knn_hidden"]
        if gap > spread:
            notes.append(
                f"Its lead over {runner.model} in k-NN gain ({gap:.3f}) is larger than the two "
                f"95% intervals over {seeds} seeds together ({spread:.3f})."
            )
        else:
            notes.append(
                f"Its lead over {runner.model} in k-NN gain ({gap:.3f}) is within the "
                f"seed-to-seed spread ({spread:.3f} over {seeds} seeds): the two are not "
                "clearly different."
            )
    elif seeds == 1:
        notes.append(
            "The comparison is under-powered: one seed per model, so differences of a few "
            "points may be noise; run the study with --seeds 3 for intervals."
        )
    updates = min((r.updates for r in learned if r.updates is not None), default=None)
    if updates is not None and updates < FEW_UPDATES:
        notes.append(
            f"With only {updates:,} updates per model this is an early look, not a final ranking."
        )
    return notes
