"""Feature commands: ``features`` (layer outputs for one input) and ``explain`` (one unit's sums)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convscope.cli.app import add_command
from convscope.cli.model_cmds import (
    add_index_argument,
    add_model_arguments,
    chosen_image,
    load,
    note_upscaled,
)
from convscope.cli.output import add_out_argument, print_json, print_result
from convscope.errors import ConvscopeError

IMAGE_HELP = (
    "the input: an image file, DATASET:SPLIT:INDEX (e.g. mnist:test:12), a sample photo "
    "(sample:china, sample:chelsea, ...), or a folder / range, of which the first image is used"
)

FEATURES_IMAGE_HELP = (
    "the images: a file, a folder, DATASET:SPLIT:INDEX (e.g. mnist:test:12), a range "
    "DATASET:SPLIT:A-B (B exclusive, any length) or a sample photo (sample:china)"
)

DEFAULT_BATCH_SIZE = 256
"""--batch-size of ``features --npy`` (the same as convscope.activations')."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``features`` and ``explain``."""
    features = add_command(
        commands,
        "features",
        "Feature maps: the outputs of chosen layers, as grids beside the input, and as\n"
        "arrays for every image a SPEC names.\n\n"
        "Each layer gets a grid of its maps with a colour bar (one scale per layer, or\n"
        "--scale per-map). Layers wider than 64 channels show their 64 most active ones\n"
        "(highest mean); --top K shows K. The figure, the table and --json show one image\n"
        "of the SPEC: --index I (default 0, the first).\n\n"
        "--npy DIR writes DIR/<layer>.npy with the layer's raw output for EVERY image the\n"
        "SPEC names, a row per image (N x C x H x W for conv layers, N x 128 for `hidden`),\n"
        "computed --batch-size images at a time and streamed to disk, so any range works\n"
        "(fashion-mnist:train:0-60000) without holding it in memory. Files are written\n"
        "under temporary names and renamed at the end: a failure leaves nothing behind.\n"
        "Without --out or --npy a table of the layers' ranges is printed.",
        "  convscope features lenet5 --image mnist:test:12 "
        "--layers max_pooling2d_1,max_pooling2d_2 --out maps.png\n"
        "  convscope features torchvision:resnet18 --image cat.jpg --layers layer1,layer2 "
        "--top 16 --out maps.png\n"
        "  convscope features residual --image fashion-mnist:test:0-10000 --layers hidden "
        "--npy arrays/\n"
        "  convscope features run.ckpt --image mnist:test:0-16 --layers conv2d_1 --index 3 "
        "--out maps.png",
    )
    add_model_arguments(features)
    features.add_argument("--image", required=True, metavar="SPEC", help=FEATURES_IMAGE_HELP)
    features.add_argument(
        "--index",
        type=int,
        default=0,
        metavar="I",
        help="which image of the SPEC the figure, table and --json show (0-based; default 0, "
        "the first); --npy always gets all of them",
    )
    features.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="B",
        help=f"images per forward pass for --npy (default {DEFAULT_BATCH_SIZE})",
    )
    features.add_argument(
        "--layers",
        required=True,
        metavar="L1,L2",
        help="comma-separated layer names (see `convscope layers MODEL`)",
    )
    add_out_argument(features, "the feature-map figure")
    features.add_argument(
        "--npy",
        type=Path,
        metavar="DIR",
        help="write DIR/<layer>.npy with each layer's raw output for every image of the "
        "SPEC (a row per image, streamed to disk), and DIR/_labels.npy and DIR/_rows.txt "
        "with each row's label (-1: none) and SPEC",
    )
    features.add_argument(
        "--scale",
        choices=("shared", "per-map"),
        default="shared",
        help="one colour scale per layer (default) or each map scaled to its own range",
    )
    features.add_argument(
        "--top", type=int, metavar="K", help="show only the K most active channels of each layer"
    )
    features.add_argument(
        "--call",
        type=int,
        default=-1,
        metavar="N",
        help="for a module run several times in one pass: which call (0-based; default last)",
    )
    features.add_argument("--json", action="store_true", help="print the layers' summary as JSON")
    features.set_defaults(handler=run_features)

    explain = add_command(
        commands,
        "explain",
        "Explain one output unit of a conv or pooling layer with the real numbers.\n\n"
        "Prints the receptive-field patch of each input channel, the kernel, their products\n"
        "and sums, the bias and the activation, and checks the result equals what the\n"
        "layer output; for pooling the window and its max or mean. Padding is marked *.\n"
        "--channel defaults to the channel most active at that position.",
        "  convscope explain lenet5 --layer conv2d_1 --image mnist:test:12 --at 10,12\n"
        "  convscope explain lenet5 --layer max_pooling2d_1 --image mnist:test:12 --at 5,6 "
        "--out pool.png\n"
        "  convscope explain torchvision:resnet18 --layer conv1 --image cat.jpg --at 0,0 "
        "--channel 3 --json",
    )
    add_model_arguments(explain)
    explain.add_argument("--layer", required=True, metavar="L", help="a conv or pooling layer")
    explain.add_argument("--image", required=True, metavar="SPEC", help=IMAGE_HELP)
    add_index_argument(explain)
    explain.add_argument(
        "--at",
        required=True,
        type=parse_position,
        metavar="ROW,COL",
        help="the output unit's position in the layer's output map (0-based)",
    )
    explain.add_argument(
        "--channel",
        type=int,
        metavar="C",
        help="output channel (default: the most active one at that position)",
    )
    explain.add_argument(
        "--call",
        type=int,
        default=-1,
        metavar="N",
        help="for a module run several times in one pass: which call (0-based; default last)",
    )
    add_out_argument(explain, "the explanation figure")
    explain.add_argument("--json", action="store_true", help="print JSON instead of text")
    explain.set_defaults(handler=run_explain)


def parse_position(text: str) -> tuple[int, int]:
    """``"3,7"`` -> ``(3, 7)``."""
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROW,COL such as 3,7, got {text!r}") from None
    if row < 0 or col < 0:
        raise argparse.ArgumentTypeError(f"ROW and COL start at 0, got {text!r}")
    return row, col


def run_features(args: argparse.Namespace) -> int:
    from convscope.probe.activations import resolve_layers
    from convscope.probe.features import feature_maps, parse_layers

    if args.top is not None and args.top < 1:
        raise ConvscopeError(f"--top must be at least 1, got {args.top}")
    if args.batch_size < 1:
        raise ConvscopeError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.index < 0:
        raise ConvscopeError(f"--index counts from 0, got {args.index}")
    model = load(args)
    layers = parse_layers(args.layers)
    resolve_layers(model.module, layers)  # name errors before reading any image
    folder = None
    if args.npy:
        from convscope.probe.streaming import prepare_folder

        folder = prepare_folder(args.npy, layers, "--npy")  # refused before any work
    from convscope.data.stream import open_images

    stream = open_images(args.image, input_spec=model.input_spec)
    count = len(stream)
    if args.index >= count:
        raise ConvscopeError(
            f"--index {args.index} is out of range: {args.image} names {count} image(s), "
            f"so the index must be 0-{count - 1}"
        )
    shows_one = bool(args.out or args.json or not args.npy)
    result = None
    if shows_one:
        image = stream.image(args.index)
        if count > 1:
            which = "the first" if args.index == 0 else f"image {args.index}"
            rest = "; --npy gets all of them" if args.npy else "; --index I picks another"
            sys.stderr.write(
                f"convscope: note: {args.image} names {count} images; using {which}, "
                f"{image.name}, for the maps{rest}\n"
            )
        note_upscaled([image], model)
        result = feature_maps(model, image, layers, call=args.call)
    written = None
    if folder is not None:
        from convscope.cli.output import announce, task_progress
        from convscope.probe.streaming import activations

        with task_progress(True) as progress:
            written = activations(
                model,
                stream,
                layers,
                batch_size=args.batch_size,
                out=folder,
                call=args.call,
                progress=progress,
            )
        for path in written.paths.values():
            announce(path)
    if args.out and result is not None:
        from convscope.cli.output import write_figure

        write_figure(result.figure(scale=args.scale, top=args.top), args.out)
    if args.json and result is not None:
        data = result.to_dict()
        data["index"], data["count"] = args.index, count
        if written is not None:
            data["npy"] = {name: str(path) for name, path in written.paths.items()}
            data["npy_shapes"] = {name: list(shape) for name, shape in written.shapes.items()}
        print_json(data)
    elif not args.out and not args.npy and result is not None:
        print_result(result, as_json=False)
    if args.batch_size != DEFAULT_BATCH_SIZE and not args.npy:  # said once it worked: a
        sys.stderr.write(  # failure is one error line
            "convscope: note: --batch-size applies to --npy only; the figure is one image\n"
        )
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from convscope.probe.explain import explain, explainable

    model = load(args)
    explainable(model.module, args.layer)  # layer errors before reading any image
    image = chosen_image(args, model)
    result = explain(model, args.layer, image, args.at, channel=args.channel, call=args.call)  # type: ignore[arg-type]
    if args.out:
        from convscope.cli.output import write_figure

        write_figure(result.figure(), args.out)
    if args.json:
        print_json(result.to_dict())
    else:
        sys.stdout.write(result.text() + "\n")
    return 0
