"""Write the small, checkable files of a finished study beside its results page.

Reads the study's runs from a run store and writes, into ``--out``: the study folder's
``results.json`` / ``results.csv`` / ``per_class.csv`` / ``curves.png`` /
``confusion_all.png`` (as ``convscope study`` writes them), ``ranking.json`` (exactly
``convscope report STUDY --json``), ``scores.csv`` (every separation score of every
run and epoch) and ``maps.png`` (the hidden layer's maps over epochs). Then it prints
the page's tables in Markdown.

    .venv/bin/python docs/results/collect_results.py --store /work/refstudy/runs \\
        --study architectures --out docs/results/architectures [--runs ID,ID,...]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from convscope.embed.projection import ProjectionParams
from convscope.embed.scores import SCORE_NAMES
from convscope.render.embedding import plot_embedding_grid
from convscope.render.figures import save_figure
from convscope.report.collect import collect_ranking
from convscope.report.study import write_study_folder
from convscope.store import open_store

KEPT = ("results.json", "results.csv", "per_class.csv", "curves.png", "confusion_all.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--study", default="architectures")
    parser.add_argument("--runs", help="run ids to use instead of the study's latest runs")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--method", default="umap")
    args = parser.parse_args()
    refs = args.runs.split(",") if args.runs else [args.study]
    args.out.mkdir(parents=True, exist_ok=True)
    with open_store(args.store, create=False) as store:
        ranked = collect_ranking(store, refs, params=ProjectionParams(method=args.method))
        seeds = {r.id: r.config.get("config", {}).get("seed") for r in store.runs()}
    ranked.study = replace(ranked.study, name=args.study)
    with tempfile.TemporaryDirectory() as folder:
        written = write_study_folder(ranked.study, Path(folder))
        for name in KEPT:
            if name in written:
                shutil.copyfile(written[name], args.out / name)
    (args.out / "ranking.json").write_text(json.dumps(ranked.to_dict(), indent=2) + "\n")
    with (args.out / "scores.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["run_id", "model", "seed", "epoch", *SCORE_NAMES])
        for embedding in ranked.embeddings:
            for epoch, scores in sorted(embedding.scores.items()):
                values = scores.to_dict()
                writer.writerow(
                    [embedding.run_id, embedding.model, seeds.get(embedding.run_id), epoch]
                    + [values[s] for s in SCORE_NAMES]
                )
    first_seed = [e for e in ranked.embeddings if seeds.get(e.run_id) == min(seeds.values())]
    save_figure(plot_embedding_grid(first_seed or ranked.embeddings), args.out / "maps.png")
    print_tables(ranked)


def print_tables(ranked) -> None:
    """The page's tables: per model, test accuracy and each score with baseline and gain."""
    probe = len(ranked.embeddings[0].labels) if ranked.embeddings else 0
    print("| model | learned | test accuracy | k-NN (hidden) | linear probe | silhouette "
          "| k-NN (map) | mean rank of gains |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in ranked.ranking:
        cells = [
            f"{r.baseline[s]:.3f} → {r.mean[s]:.3f} ({r.gain_text(s)}){_interval(r, s, probe)}"
            for s in ("knn_hidden", "linear_probe", "silhouette", "knn_map")
        ]
        learned = "yes" if r.learned else f"not yet ({r.why_not})"
        print(f"| {r.model} | {learned} | {r.test_text()} | " + " | ".join(cells)
              + f" | {r.mean_rank:.2f} |")  # fmt: skip
    print()
    print(ranked.to_dict()["verdict"])


def _interval(r, score: str, probe: int) -> str:
    """With one seed: the 95% binomial half-width of an accuracy on the probe set."""
    if r.seeds > 1 or score not in ("knn_hidden", "linear_probe", "knn_map") or not probe:
        return ""
    p = r.mean[score]
    return f" ±{1.96 * math.sqrt(p * (1 - p) / probe):.3f}"


if __name__ == "__main__":
    main()
