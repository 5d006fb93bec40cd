"""``convscope embed``: 2-D maps of a recorded layer over epochs, with separation scores."""

from __future__ import annotations

import argparse

from convscope.cli.app import add_command
from convscope.cli.output import (
    add_out_argument,
    add_store_argument,
    announce,
    console,
    output_file,
    print_json,
    task_progress,
    write_figure,
)
from convscope.embed.constants import METHODS


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``embed``."""
    embed = add_command(
        commands,
        "embed",
        "Map a recorded layer of one or more runs to 2-D, epoch by epoch, and score it.\n\n"
        "Each epoch's map starts from the previous epoch's and is Procrustes-aligned to it,\n"
        "so the picture does not flip or jump; all maps share one scale. Scores per epoch:\n"
        "k-NN accuracy in the hidden space and in the map, silhouette, trustworthiness and\n"
        "linear-probe accuracy. Results are cached in the run store: asking again is instant.",
        "  convscope embed 3fa2c1d0 --layer hidden\n"
        "  convscope embed RUN_A RUN_B --layer hidden --method pca --out maps.png --animation maps.mp4\n"
        "  convscope embed 3fa2c1d0 --layer hidden --method tsne --json\n"
        "  convscope embed architectures --layer hidden --out study-maps.png",
    )
    embed.add_argument(
        "runs",
        nargs="+",
        metavar="RUN|STUDY",
        help="run ids, unique id prefixes or run names, or a study name for all its runs",
    )
    embed.add_argument(
        "--layer", required=True, help="a layer recorded with --record (e.g. hidden)"
    )
    embed.add_argument("--method", choices=METHODS, default="umap", help="(umap)")
    embed.add_argument(
        "--n-neighbors", type=int, default=40, help="UMAP neighbours (40, the reference's)"
    )
    embed.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (30)")
    embed.add_argument("--seed", type=int, default=0, help="random seed of UMAP / t-SNE (0)")
    embed.add_argument(
        "--no-align", action="store_true", help="fit each epoch independently (for comparison)"
    )
    add_out_argument(embed, "the grid of maps (runs x epochs)")
    embed.add_argument(
        "--animation",
        "--gif",
        dest="animation",
        type=output_file,
        metavar="F",
        help="write an animation over epochs (.gif, or .mp4 where ffmpeg is installed)",
    )
    embed.add_argument(
        "--scores-out", type=output_file, metavar="F", help="write the score curves here"
    )
    add_store_argument(embed)
    embed.add_argument("--json", action="store_true", help="print the scores as JSON")
    embed.set_defaults(handler=run_embed)


def run_embed(args: argparse.Namespace) -> int:
    from convscope.embed.projection import ProjectionParams
    from convscope.embed.runs import embed_run
    from convscope.errors import ConvscopeError
    from convscope.store import open_store
    from convscope.store.results import resolve_runs

    params = ProjectionParams(
        method=args.method,
        n_neighbors=args.n_neighbors,
        perplexity=args.perplexity,
        seed=args.seed,
        aligned=not args.no_align,
    )
    if args.animation is not None and args.animation.suffix.lower() not in (".gif", ".mp4"):
        raise ConvscopeError(
            f"cannot write {args.animation}: an animation's file name must end in .gif or .mp4"
        )
    results = []
    with open_store(args.store, create=False) as store, task_progress(not args.json) as progress:
        for ref in resolve_runs(store, args.runs)[1]:
            label = f"{args.method} {store.run(ref).name}"
            report = (
                (lambda done, total, label=label: progress(label, done, total))
                if progress
                else None
            )
            results.append(embed_run(store, ref, args.layer, params, progress=report))
    if args.out:
        from convscope.render.embedding import plot_embedding_grid

        write_figure(plot_embedding_grid(results), args.out)
    if args.scores_out:
        from convscope.render.embedding import plot_score_curves

        write_figure(plot_score_curves(results), args.scores_out)
    if args.animation:
        from convscope.render.embedding import write_animation

        announce(write_animation(results, args.animation))
    if args.json:
        print_json([r.to_dict() for r in results])
    else:
        _print_scores(results)
    return 0


def _print_scores(results) -> None:
    from convscope.render.tables import records_table

    records = [
        {"run": r.run_name, "model": r.model, "epoch": e, **r.scores[e].to_dict()}
        for r in results
        for e in r.epochs
        if e in r.scores
    ]
    columns = [
        "run",
        "epoch",
        "knn_hidden",
        "knn_map",
        "silhouette",
        "trustworthiness",
        "linear_probe",
    ]
    title = f"{results[0].layer}: separation over epochs ({results[0].params.method})"
    headers = {"knn_hidden": "k-NN hidden", "knn_map": "k-NN map", "linear_probe": "Linear probe"}
    console().print(records_table(title, records, columns, headers))
