"""Training names the CLI offers as choices, free of heavy imports so ``--help`` is fast.

:mod:`convscope.train.loop` and :mod:`convscope.train.study` re-export them; this
module is their one source.
"""

from __future__ import annotations

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("none", "cosine", "step")

STUDY_MODELS = ("sequential", "inception", "residual", "inception-residual")
"""The four Fashion-MNIST architectures the study compares, in the reference's order."""
