"""The embedding names the CLI offers as choices, free of heavy imports so ``--help`` is fast.

:mod:`convscope.embed.projection` re-exports them; this module is their one source.
"""

from __future__ import annotations

METHODS = ("umap", "pca", "tsne")
"""The 2-D projection methods: UMAP (umap-learn), PCA and t-SNE (scikit-learn)."""
