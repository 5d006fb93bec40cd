"""Where a model's weights came from, in words, so every output can say "untrained".

A model built without weights has a random initialisation; pictures and predictions
of it look like results but show nothing learned. :class:`LoadedModel` carries a
``weights`` description made here, and titles, tables and JSON use these helpers.
Plain strings only (no torch), so renderers and the CLI can import it cheaply.
"""

from __future__ import annotations

RANDOM_INIT = "random init"


def random_init_label(seed: int | None) -> str:
    """How the weights of a freshly built model are described: ``random init (seed 0)``."""
    return f"{RANDOM_INIT} (seed {seed})" if seed is not None else f"{RANDOM_INIT} (unseeded)"


def run_epoch_label(run_id: str, epoch: int) -> str:
    """How the weights of a run's checkpoint are described: ``run 3fa2c1d0 epoch 5``."""
    return f"run {run_id} epoch {epoch}" + (" (before the first update)" if epoch == 0 else "")


def is_untrained(weights: str) -> bool:
    """Whether a weights description is a random initialisation (nothing learned yet)."""
    return weights.startswith(RANDOM_INIT)


def flat_label(weights: str) -> str:
    """A weights description without nested brackets: ``random init, seed 0``."""
    return weights.replace(" (", ", ").replace(")", "")


def model_title(name: str, weights: str) -> str:
    """A model's name for titles and tables with its weights: ``lenet5 (run ab12 epoch 5)``,
    ``lenet5 (untrained: random init, seed 0)``; just the name when nothing is known."""
    if not weights:
        return name
    if is_untrained(weights):
        return f"{name} (untrained: {flat_label(weights)})"
    return f"{name} ({flat_label(weights)})"


def untrained_caption(weights: str) -> str:
    """A sentence for a caption when the weights are untrained, else ``""``."""
    if not is_untrained(weights):
        return ""
    return (
        f"Untrained weights ({flat_label(weights)}): nothing here was learned yet; load "
        "trained ones with --weights, a checkpoint or run:ID."
    )
