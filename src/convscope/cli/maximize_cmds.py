"""The ``maximize`` command: synthesise the input a class or a channel responds to most."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from convscope.cli.app import add_command
from convscope.cli.model_cmds import add_model_arguments, load
from convscope.cli.output import (
    add_out_argument,
    output_file,
    print_result,
    write_figure,
    write_npy,
)

EXAMPLES = """\
  convscope maximize run:abc123 --class all --out digits.png
  convscope maximize lenet5.ckpt --class 7 --objective prob --json
  convscope maximize fashion.ckpt --class Trouser --out trouser.png
  convscope maximize lenet5.ckpt --channel conv2d_2:0-15 --out channels.png
  convscope maximize resnet50 --weights r50.pth --class 207 --steps 512 --out dog.png"""


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``maximize`` command."""
    parser = add_command(
        commands,
        "maximize",
        "Synthesise the input that maximises a class or a channel (activation maximisation).\n\n"
        "Gradient ascent from several random starts with jitter, scale, rotation, blur,\n"
        "total variation and L2; RGB images are optimised in a decorrelated Fourier space.\n"
        "A target whose gradient vanishes, or whose score does not rise, is reported as\n"
        "such (status in --json, a message in the figure) instead of being drawn.",
        EXAMPLES,
    )
    add_model_arguments(parser)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--class",
        "--classes",
        dest="classes",
        metavar="K",
        help="class index or name, 'all', an inclusive range such as 0-9, or a list 1,7",
    )
    what.add_argument(
        "--channel",
        metavar="L:C",
        help="channel C of layer L (see `convscope layers`), or a range L:0-15, or L:all",
    )
    parser.add_argument(
        "--objective",
        choices=("logit", "prob", "mean"),
        help="what to climb: a class logit (default), its probability, or a channel's mean",
    )
    add_out_argument(parser, "the figure of the synthesised inputs")
    parser.add_argument(
        "--trace-out",
        type=output_file,
        metavar="F",
        help="write the per-start convergence traces to F",
    )
    parser.add_argument(
        "--npy",
        type=output_file,
        metavar="F",
        help="write the best inputs, as the model takes them (N x C x H x W), to F.npy",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    tuning = parser.add_argument_group(
        "optimisation", "Defaults fit the model's input size and the objective."
    )
    tuning.add_argument("--steps", type=int, metavar="N", help="most ascent steps")
    tuning.add_argument("--starts", type=int, metavar="N", help="random starts per target")
    tuning.add_argument("--lr", type=float, metavar="LR", help="Adam learning rate")
    tuning.add_argument(
        "--param",
        choices=("auto", "pixel", "fourier"),
        help="image parameterisation (auto: Fourier, with colour decorrelation for RGB)",
    )
    tuning.add_argument(
        "--no-decorrelate",
        dest="decorrelate",
        action="store_false",
        default=None,
        help="optimise RGB channels directly instead of decorrelated colours",
    )
    tuning.add_argument("--jitter", type=int, metavar="PX", help="random shift, pixels")
    tuning.add_argument("--scale", type=float, metavar="F", help="random scale ±F (0.1)")
    tuning.add_argument("--rotate", type=float, metavar="DEG", help="random rotation ±DEG")
    tuning.add_argument("--blur-every", type=int, metavar="N", help="blur every N steps (0: off)")
    tuning.add_argument("--blur-sigma", type=float, metavar="PX", help="blur width, pixels")
    tuning.add_argument("--tv", type=float, metavar="W", help="total-variation weight")
    tuning.add_argument("--l2", type=float, metavar="W", help="L2 weight (towards the data mean)")
    tuning.add_argument("--patience", type=int, metavar="N", help="stop after N steps without gain")
    tuning.add_argument(
        "--init-std", type=float, metavar="S", help="spread of the random starts (pre-sigmoid)"
    )
    parser.set_defaults(handler=run_maximize)


SETTING_ARGS = (
    "steps",
    "starts",
    "lr",
    "seed",
    "param",
    "decorrelate",
    "jitter",
    "scale",
    "rotate",
    "blur_every",
    "blur_sigma",
    "tv",
    "l2",
    "patience",
    "init_std",
)


def run_maximize(args: argparse.Namespace) -> int:
    from convscope.errors import ConvscopeError
    from convscope.probe.maximize import (
        ROSE,
        ascent_size,
        maximize,
        maximize_targets,
        process_compute_mode,
    )
    from convscope.render.figures import figure_format

    for path in (args.out, args.trace_out):  # fail before the ascent, not after it
        if path is not None:
            figure_format(path)
    if args.npy is not None and args.npy.suffix != ".npy":
        raise ConvscopeError(f"cannot write {args.npy}: an array file name must end in .npy")
    overrides = {name: getattr(args, name) for name in SETTING_ARGS}
    model = load(args)
    size = ascent_size(model, len(maximize_targets(model, args.classes, args.channel)), args.starts)
    with _progress(enabled=not args.json) as progress, process_compute_mode(size):
        result = maximize(
            model,
            args.classes,
            channels=args.channel,
            objective=args.objective,
            progress=progress,
            **overrides,
        )
    for target in result.targets:
        if target.status not in ROSE:
            sys.stderr.write(f"convscope: warning: {target.target.name}: {target.message}\n")
    if args.out:
        write_figure(result.figure(), args.out)
    if args.trace_out:
        write_figure(result.trace_figure(), args.trace_out)
    if args.npy:
        write_npy(args.npy, result.inputs)
    print_result(result, as_json=args.json)
    return 0


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A step progress bar on stderr (only on a terminal), as a ``progress`` callback."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    err = Console(stderr=True)
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(
        "gradient ascent",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("ascent", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
