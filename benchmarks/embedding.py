"""What the default embedding (the stratified probe set) saves over the reference's, and what it keeps.

The architectures reference maps all 48,000 training images through UMAP
(n_neighbors=40) before every epoch. convscope maps the stratified probe set (100
images per class) instead. Measured in one run, on the ``hidden`` layer of
``sequential`` after ``--epochs`` of training on Fashion-MNIST:

1. seconds per epoch of each method (UMAP, PCA, t-SNE) on the probe set, and of the
   reference's UMAP of the full training part; ``speedup_vs_full_umap`` is their ratio
   for UMAP (target: at least 20). UMAP's one-time numba compilation is warmed up first
   and not counted.
2. how well the probe map keeps the full map's neighbourhoods among the probe images:
   ``trustworthiness_vs_full`` (scikit-learn, k=10, the full map's probe points as the
   reference space) and ``knn_agreement_vs_full`` (mean share of the 10 nearest
   neighbours two maps have in common).

The last line of stdout is one JSON object.

    python benchmarks/embedding.py [--full 48000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from convscope.data.datasets import load_dataset
from convscope.data.sampling import stratified_indices
from convscope.embed.projection import ProjectionParams, fit_layout
from convscope.models.loading import load_model
from convscope.probe.activations import capture
from convscope.train.loop import TrainConfig
from convscope.train.trainer import fit

K = 10


def hidden_outputs(model, images: np.ndarray, layer: str, batch: int = 2000) -> np.ndarray:
    """``layer``'s outputs for ``images``, computed batch by batch."""
    parts = []
    with torch.no_grad(), capture(model.module, [layer]) as captured:
        for start in range(0, len(images), batch):
            model.module(model.input_spec.normalize(images[start : start + batch]))
            parts.append(captured.output(layer).reshape(-1, captured.output(layer).shape[1]))
            captured.calls[layer].clear()
    return torch.cat(parts).numpy()


def knn_agreement(a: np.ndarray, b: np.ndarray, k: int = K) -> float:
    """Mean share of each point's ``k`` nearest neighbours that two layouts have in common."""
    from sklearn.neighbors import NearestNeighbors

    def neighbours(x: np.ndarray) -> np.ndarray:
        return (
            NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
        )

    na, nb = neighbours(a), neighbours(b)
    return float(np.mean([len(set(p) & set(q)) / k for p, q in zip(na, nb, strict=True)]))


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=int, default=48_000, help="points of the full map (48000)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs before mapping (1)")
    parser.add_argument("--per-class", type=int, default=100, help="probe images per class (100)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    train = load_dataset("fashion-mnist", "train")
    keep = stratified_indices(train.labels, args.full // 10, seed=0)
    data = replace(train, images=train.images[keep], labels=train.labels[keep])
    model = load_model("sequential", seed=0)
    print(f"training sequential for {args.epochs} epoch(s) on {len(keep):,} images ...", flush=True)
    fit(model, data, None, TrainConfig(epochs=args.epochs, batch_size=500, seed=0))
    hidden = hidden_outputs(model, data.images, "hidden")
    probe = stratified_indices(data.labels, args.per_class, seed=0)
    probe_hidden = hidden[probe]
    print(f"hidden: {hidden.shape[0]:,} x {hidden.shape[1]}; probe set: {len(probe):,}", flush=True)

    fit_layout(probe_hidden[:200], ProjectionParams(method="umap"))  # numba compilation
    seconds: dict[str, float] = {}
    layouts: dict[str, np.ndarray] = {}
    for method in ("umap", "pca", "tsne"):
        layouts[method], seconds[method] = timed(
            lambda m=method: fit_layout(probe_hidden, ProjectionParams(method=m))
        )
        print(f"probe {method:>4}: {seconds[method]:7.2f} s per epoch", flush=True)
    full, full_seconds = timed(lambda: fit_layout(hidden, ProjectionParams(method="umap")))
    print(f"full  umap: {full_seconds:7.2f} s per epoch ({len(hidden):,} points)", flush=True)

    from sklearn.manifold import trustworthiness

    reference = full[probe]
    figures = {
        "points_probe": len(probe),
        "points_full": len(hidden),
        "seconds_per_epoch": {m: round(s, 3) for m, s in seconds.items()},
        "seconds_full_umap": round(full_seconds, 3),
        "speedup_vs_full_umap": round(full_seconds / seconds["umap"], 1),
        "trustworthiness_vs_full": round(
            float(trustworthiness(reference, layouts["umap"], n_neighbors=K)), 4
        ),
        "knn_agreement_vs_full": round(knn_agreement(reference, layouts["umap"]), 4),
        "trustworthiness_of_hidden_probe": round(
            float(trustworthiness(probe_hidden, layouts["umap"], n_neighbors=K)), 4
        ),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
