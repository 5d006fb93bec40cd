"""Feature commands: ``features`` (layer outputs for one input) and ``explain`` (one unit's sums)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convscope.cli.app import add_command
from convscope.cli.model_cmds import add_model_arguments, load
from convscope.cli.output import add_out_argument, print_json, print_result
from convscope.errors import ConvscopeError
from convscope.files import check_writable

IMAGE_HELP = (
    "the input: an image file, DATASET:SPLIT:INDEX (e.g. mnist:test:12), a sample photo "
    "(sample:china or sample:flower), or a folder / range, of which the first image is used"
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``features`` and ``explain``."""
    features = add_command(
        commands,
        "features",
        "Feature maps: the outputs of chosen layers for one input, as grids beside it.\n\n"
        "Each layer gets a grid of its maps with a colour bar (one scale per layer, or\n"
        "--scale per-map). Layers wider than 64 channels show their 64 most active ones\n"
        "(highest mean); --top K shows K. A SPEC naming several images uses the first.\n"
        "Without --out or --npy a table of the layers' ranges is printed.",
        "  convscope features lenet5 --image mnist:test:12 "
        "--layers max_pooling2d_1,max_pooling2d_2 --out maps.png\n"
        "  convscope features torchvision:resnet18 --image cat.jpg --layers layer1,layer2 "
        "--top 16 --out maps.png\n"
        "  convscope features run.ckpt --image digit.png --layers conv2d_1 --npy arrays/",
    )
    add_model_arguments(features)
    features.add_argument("--image", required=True, metavar="SPEC", help=IMAGE_HELP)
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
        help="write DIR/<layer>.npy with each layer's raw output (batch dimension kept)",
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


def _first_image(args: argparse.Namespace, model: object) -> object:
    """The first image of --image; a note on stderr when the SPEC names more."""
    from convscope.probe.features import first_image

    image, count = first_image(args.image, model)  # type: ignore[arg-type]
    if count > 1:
        sys.stderr.write(
            f"convscope: note: {args.image} names {count} images; using the first, {image.name}\n"
        )
    return image


def run_features(args: argparse.Namespace) -> int:
    from convscope.probe.features import feature_maps, parse_layers

    if args.top is not None and args.top < 1:
        raise ConvscopeError(f"--top must be at least 1, got {args.top}")
    model = load(args)
    layers = parse_layers(args.layers)
    from convscope.probe.activations import resolve_layers

    resolve_layers(model.module, layers)  # name errors before reading any image
    result = feature_maps(model, _first_image(args, model), layers, call=args.call)  # type: ignore[arg-type]
    if args.out:
        from convscope.cli.output import write_figure

        write_figure(result.figure(scale=args.scale, top=args.top), args.out)
    if args.npy:
        _write_arrays(args.npy, result)
    if args.json:
        data = result.to_dict()
        if args.npy:
            data["npy"] = {
                layer.name: str(_npy_path(args.npy, layer.name)) for layer in result.layers
            }
        print_json(data)
    elif not args.out and not args.npy:
        print_result(result, as_json=False)
    return 0


def _npy_path(folder: Path, layer: str) -> Path:
    return Path(folder) / f"{layer.replace('/', '_')}.npy"


def _write_arrays(folder: Path, result: object) -> None:
    """``DIR/<layer>.npy`` for every layer (DIR made if missing; each file written atomically)."""
    from convscope.cli.output import write_npy

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConvscopeError(f"--npy needs a folder, but {folder} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConvscopeError(f"cannot create folder {folder}: {exc.strerror}") from None
    layers = result.layers  # type: ignore[attr-defined]
    for layer in layers:  # all or nothing: check every file before writing the first
        check_writable(_npy_path(folder, layer.name))
    for layer in layers:
        write_npy(_npy_path(folder, layer.name), layer.output)


def run_explain(args: argparse.Namespace) -> int:
    from convscope.probe.explain import explain, explainable

    model = load(args)
    explainable(model.module, args.layer)  # layer errors before reading any image
    image = _first_image(args, model)
    result = explain(model, args.layer, image, args.at, channel=args.channel, call=args.call)  # type: ignore[arg-type]
    if args.out:
        from convscope.cli.output import write_figure

        write_figure(result.figure(), args.out)
    if args.json:
        print_json(result.to_dict())
    else:
        sys.stdout.write(result.text() + "\n")
    return 0
