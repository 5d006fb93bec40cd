"""The ``examples`` command: the images that activate a channel of a layer most, and least."""

from __future__ import annotations

import argparse
import sys

from convscope.cli.app import add_command
from convscope.cli.model_cmds import add_model_arguments, load
from convscope.cli.output import add_out_argument, print_json, print_result, task_progress
from convscope.errors import ConvscopeError

DEFAULT_TOP = 9
DEFAULT_BATCH_SIZE = 256

SUMMARY = """\
Dataset examples: the images that activate one channel of a layer most, and least
(what OpenAI Microscope shows beside each unit).

Each image's value is the mean of the channel's map over its positions (for a layer
whose output is a vector, such as `hidden`, the value of unit C). The images are run
--batch-size at a time and only those values are kept, so any number of images works.
Without --image the set is the run's probe set (MODEL run:ID or run:ID@EPOCH: the images
every epoch's snapshot shows), or else a stratified sample of 500 images of the test
split of the dataset the model was made for. --out draws the K most and K least
activating images with their classes and values; --json prints them; otherwise a table."""

EXAMPLES = """\
  convscope examples lenet5 --layer conv2d_2 --channel 3 --image mnist:test:0-1000 --out c3.png
  convscope examples run:ab12cd34@5 --layer hidden --channel 17 --top 16 --out unit17.png
  convscope examples residual --weights net.pth --layer conv2D_1 --channel 0 --json
  convscope examples lenet5.ckpt --layer conv2d_1 --channel 5 --image digits/"""

IMAGE_HELP = (
    "the images to rank: DATASET:SPLIT:A-B (B exclusive, any length, e.g. "
    "mnist:test:0-10000), a folder, a file or DATASET:SPLIT:INDEX (default: the run's probe "
    "set, or a stratified sample of 500 test images of the model's dataset)"
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``examples`` command."""
    parser = add_command(commands, "examples", SUMMARY, EXAMPLES)
    add_model_arguments(parser)
    parser.add_argument(
        "--layer", required=True, metavar="L", help="the layer (see `convscope layers MODEL`)"
    )
    parser.add_argument(
        "--channel",
        required=True,
        type=int,
        metavar="C",
        help="the channel of the layer (0-based; a unit for a layer whose output is a vector)",
    )
    parser.add_argument("--image", metavar="SPEC", help=IMAGE_HELP)
    parser.add_argument(
        "--top",
        type=int,
        default=DEFAULT_TOP,
        metavar="K",
        help=f"how many images at each end: the K most and the K least active (default "
        f"{DEFAULT_TOP}); a set of fewer than 2K images is listed once, most to least active",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="B",
        help=f"images per forward pass (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--call",
        type=int,
        default=-1,
        metavar="N",
        help="for a module run several times in one pass: which call (0-based; default last)",
    )
    add_out_argument(parser, "the figure of the most and least activating images")
    parser.add_argument("--json", action="store_true", help="print the examples as JSON")
    parser.set_defaults(handler=run_examples)


def run_examples(args: argparse.Namespace) -> int:
    from convscope.probe.examples import check_channel, layer_units, top_activations

    if args.top < 1:
        raise ConvscopeError(f"--top must be at least 1, got {args.top}")
    if args.batch_size < 1:
        raise ConvscopeError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.out:
        from convscope.render.figures import figure_format

        figure_format(args.out)  # a name that is not .png/.svg/.pdf: refused before any work
    model = load(args)
    units, _, vector = layer_units(model, args.layer, call=args.call)  # before any image
    check_channel(args.channel, units, args.layer, vector)
    images = args.image
    if images is None:
        from convscope.probe.examples import example_images

        images = example_images(model, args.store)
        sys.stderr.write(
            f"convscope: note: ranking the {images.spec} ({len(images)} images); "
            "--image SPEC ranks others\n"
        )
    with task_progress(True) as progress:
        result = top_activations(
            model,
            args.layer,
            images,
            args.top,
            channel=args.channel,
            batch_size=args.batch_size,
            call=args.call,
            store=args.store,
            progress=progress,
        )
    if args.out:
        from convscope.cli.output import write_figure

        write_figure(result.figure(), args.out)
    if args.json:
        print_json(result.to_dict())
    elif not args.out:
        print_result(result, as_json=False)
    return 0
