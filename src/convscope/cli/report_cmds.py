"""``convscope report``: the study report, one self-contained HTML file."""

from __future__ import annotations

import argparse

from convscope.cli.app import add_command
from convscope.cli.output import (
    add_store_argument,
    announce,
    output_file,
    print_json,
    task_progress,
)
from convscope.embed.constants import METHODS
from convscope.files import check_writable


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``report``."""
    report = add_command(
        commands,
        "report",
        "Write one self-contained HTML report on a study or on runs.\n\n"
        "It holds the models (summary and diagram), training curves, the results table,\n"
        "confusion matrices, maps of the recorded layer over epochs (grid and animation),\n"
        "separation scores with a ranked verdict, first-layer kernels over epochs, sample\n"
        "feature maps, the settings and the versions. Images are inlined: the file opens\n"
        "from disk with no network. Maps and scores are cached in the run store.",
        "  convscope report architectures --out report.html\n"
        "  convscope report 3fa2c1d0 94cc7dab --out two-runs.html --method pca\n"
        "  convscope report architectures --store demo-out/runs --out demo-out/report.html\n"
        "  convscope report architectures --json     # the verdict and the ranking it rests on",
    )
    report.add_argument("refs", nargs="+", metavar="STUDY|RUN", help="a study name or run ids")
    report.add_argument(
        "--out",
        type=output_file,
        metavar="F",
        help="the report file (.html); optional with --json",
    )
    report.add_argument("--layer", help="the recorded layer to map (default: the first recorded)")
    report.add_argument("--method", choices=METHODS, default="umap", help="map method (umap)")
    report.add_argument(
        "--image", metavar="SPEC", help="input of the sample feature maps (DATASET:test:0)"
    )
    report.add_argument(
        "--json",
        action="store_true",
        help='print {"verdict", "ranking": [{"model", "test_acc", "learned", "epoch", "scores", '
        '"gain_over_epoch0", "mean_rank"}]}: the ranking the verdict rests on',
    )
    add_store_argument(report)
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from convscope.embed.projection import ProjectionParams
    from convscope.errors import ConvscopeError
    from convscope.report.collect import collect_ranking, collect_report
    from convscope.report.page import write_report
    from convscope.report.verdict import ranking_document
    from convscope.store import open_store

    if args.out is None and not args.json:
        raise ConvscopeError("say where to write the report: --out report.html (or ask for --json)")
    if args.out is not None:
        if args.out.suffix.lower() not in (".html", ".htm"):
            raise ConvscopeError(
                f"cannot write {args.out}: the report's file name must end in .html"
            )
        check_writable(args.out)
    params = ProjectionParams(method=args.method)
    with open_store(args.store, create=False) as store, task_progress(True) as progress:
        if args.out is None:
            ranking = collect_ranking(
                store, args.refs, layer=args.layer, params=params, progress=progress
            ).ranking
        else:
            data = collect_report(
                store,
                args.refs,
                layer=args.layer,
                params=params,
                image=args.image,
                progress=progress,
            )
            write_report(data, args.out, progress)
            ranking = data.ranking
    if args.json:
        print_json(ranking_document(ranking))
    else:
        announce(args.out)
    return 0
