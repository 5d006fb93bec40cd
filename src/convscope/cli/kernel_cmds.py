"""Kernel commands: ``kernels`` (grids, health, kernels over epochs) and ``apply-kernel``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from convscope.cli.app import add_command
from convscope.cli.model_cmds import add_index_argument, add_model_arguments, chosen_image, load
from convscope.cli.output import (
    add_out_argument,
    announce,
    console,
    output_file,
    print_json,
    write_figure,
    write_npy,
)
from convscope.errors import ConvscopeError
from convscope.models.provenance import model_title

NORMS = ("per-kernel", "layer", "diverging")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``kernels`` and ``apply-kernel``."""
    kernels = add_command(
        commands,
        "kernels",
        "Draw the kernels of a conv layer, and measure their health.\n\n"
        "One input channel: gray tiles; three: RGB tiles (--bgr for models trained on BGR);\n"
        "more: one tile per kernel, its L2 norm over the input channels (--reduce mean for\n"
        "the mean), or --per-channel for one row per output channel over its input channels.\n"
        "With MODEL run:ID and --epochs, the kernels a recorded run kept at each epoch.",
        "  convscope kernels lenet --layer conv2d_1 --out k.png\n"
        "  convscope kernels resnet50 --weights r50.pth --layer conv1 --out k.png --health\n"
        "  convscope kernels lenet --layer conv2d_2 --reduce mean --norm layer --out k.svg\n"
        "  convscope kernels lenet --layer conv2d_1 --health --json\n"
        "  convscope kernels run:3f2a --layer conv2d_1 --epochs all --out k.gif",
    )
    add_model_arguments(kernels)
    kernels.add_argument("--layer", required=True, metavar="L", help="the conv layer's name")
    add_out_argument(kernels, "the kernel grid (.gif: an animation over --epochs)")
    kernels.add_argument(
        "--npy",
        type=output_file,
        metavar="F",
        help="write the raw weights, out x in x H x W (E x ... with --epochs)",
    )
    kernels.add_argument(
        "--norm",
        choices=NORMS,
        default=None,
        help="per-kernel min-max (default), one layer-wide scale, or a "
        "diverging scale centred on zero (default 'layer' with --epochs)",
    )
    kernels.add_argument(
        "--reduce",
        choices=("mean", "norm"),
        help="one tile per kernel: mean or L2 norm over its input channels "
        "(default norm for layers of more than three input channels)",
    )
    kernels.add_argument(
        "--per-channel",
        action="store_true",
        help="one row per output channel over its input channels (deep layers, and RGB)",
    )
    kernels.add_argument("--cols", type=int, metavar="N", help="grid columns (default: automatic)")
    kernels.add_argument(
        "--limit", type=int, metavar="N", help="show only the first N kernels (output channels)"
    )
    kernels.add_argument(
        "--bgr",
        action="store_true",
        help="the model was trained on BGR input: show its kernels as RGB",
    )
    kernels.add_argument(
        "--health", action="store_true", help="measure dead, near-duplicate and noisy kernels"
    )
    kernels.add_argument(
        "--health-out",
        type=output_file,
        metavar="F",
        help="write the health figure to F (.png, .svg or .pdf)",
    )
    kernels.add_argument(
        "--epochs", metavar="E", help="with MODEL run:ID: 'all' or a list such as 0,1,5"
    )
    kernels.add_argument("--json", action="store_true", help="print JSON instead of a table")
    kernels.set_defaults(handler=run_kernels)

    apply = add_command(
        commands,
        "apply-kernel",
        "Apply one kernel of a conv layer to an image and show its response: the edge it sees.\n\n"
        "IMAGE is a SPEC (file, folder, DATASET:SPLIT:INDEX or A-B: --index picks one), or a photo\n"
        "that ships with scikit-learn or scikit-image: sample:china, sample:chelsea, sample:coffee...",
        "  convscope apply-kernel resnet50 --layer conv1 --kernel 0 --image sample:china "
        "--out r.png\n"
        "  convscope apply-kernel lenet --layer conv2d_1 --kernel 3 --image mnist:test:0 --json\n"
        "  convscope apply-kernel resnet50 --layer conv1 --kernel 5 --image cat.jpg --full-size",
    )
    add_model_arguments(apply)
    apply.add_argument("--layer", required=True, metavar="L", help="the conv layer's name")
    apply.add_argument(
        "--kernel",
        required=True,
        type=int,
        metavar="K",
        help="the kernel (output channel) to apply",
    )
    apply.add_argument("--image", required=True, metavar="SPEC", help="the image")
    add_index_argument(apply)
    apply.add_argument(
        "--full-size",
        action="store_true",
        help="keep the image's own size instead of the model's input size",
    )
    apply.add_argument("--bgr", action="store_true", help="feed the image as BGR")
    add_out_argument(apply, "the image, kernel and response figure")
    apply.add_argument(
        "--npy", type=output_file, metavar="F", help="write the response map (H x W)"
    )
    apply.add_argument("--json", action="store_true", help="print JSON instead of a table")
    apply.set_defaults(handler=run_apply_kernel)


def parse_epochs(text: str) -> list[int] | None:
    """``"all"`` -> None (every recorded epoch); ``"0,1,5"`` -> ``[0, 1, 5]``."""
    if text.strip() == "all":
        return None
    try:
        epochs = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConvscopeError(
            f"--epochs takes 'all' or a list such as 0,1,5, not {text!r}"
        ) from None
    if not epochs or min(epochs) < 0:
        raise ConvscopeError(f"--epochs takes 'all' or a list such as 0,1,5, not {text!r}")
    return sorted(set(epochs))


def _check_counts(args: argparse.Namespace) -> None:
    for name in ("cols", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConvscopeError(f"--{name} must be at least 1, got {value}")


def run_kernels(args: argparse.Namespace) -> int:
    _check_counts(args)
    if args.epochs is not None:
        return _run_epochs(args)
    if args.out is not None and args.out.suffix.lower() == ".gif":
        raise ConvscopeError(
            "a .gif shows kernels over epochs: give MODEL run:ID with --epochs all"
        )
    from convscope.probe.kernels import kernel_set

    model = load(args)
    kernels = kernel_set(model, args.layer, channel_order="BGR" if args.bgr else None)
    grid = kernels.grid(
        args.norm or "per-kernel",
        reduce=args.reduce,
        per_channel=args.per_channel,
        cols=args.cols,
        limit=args.limit,
    )
    health = kernels.health() if args.health or args.health_out else None
    if args.npy is not None:
        write_npy(args.npy, kernels.weights)
    if args.out is not None:
        write_figure(grid.figure(), args.out)
    if args.health_out is not None and health is not None:
        write_figure(health.figure(), args.health_out)
    document: dict[str, Any] = grid.to_dict() | {
        "type": kernels.layer_type,
        "nonfinite": list(kernels.nonfinite),
    }
    if health is not None:
        document["health"] = health.to_dict()
    if args.json:
        print_json(document)
    else:
        _print_kernels(document, health, drew=args.out is not None)
    return 0


def _print_kernels(document: dict[str, Any], health: Any, *, drew: bool) -> None:
    """A few lines for people: shape, normalisation, health summary and flagged kernels."""
    out = console()
    shape = "×".join(str(s) for s in document["shape"])
    out.print(
        f"[bold]{escape(model_title(document['model'], document['weights']))} · "
        f"{escape(document['layer'])}[/] ({document['type']}): "
        f"{shape} (out × in × H × W), channels {document['channel_order'] or 'feature maps'}"
    )
    out.print(document["caption"])
    if document["nonfinite"]:
        out.print(f"[red]kernels with NaN/Inf weights: {document['nonfinite']}[/]")
    if health is not None:
        out.print(health)
    if not drew:
        out.print("[dim]add --out FILE.png to draw the grid[/]")


def _run_epochs(args: argparse.Namespace) -> int:
    from convscope.probe.kernels import kernels_over_epochs

    if not args.model.startswith("run:"):
        raise ConvscopeError(
            f"--epochs needs a recorded run as MODEL (run:ID), not {args.model!r}; "
            "list runs with `convscope runs list`"
        )
    if args.weights is not None:
        raise ConvscopeError("--weights does not apply to a recorded run's epochs")
    if args.per_channel:
        raise ConvscopeError("--per-channel does not apply to --epochs; use --reduce or a layer")
    if args.out is not None and args.out.suffix.lower() not in (".png", ".svg", ".pdf", ".gif"):
        raise ConvscopeError(
            f"cannot write {args.out}: the file name must end in .png, .svg, .pdf "
            "or .gif (an animation over the epochs)"
        )
    epochs = parse_epochs(args.epochs)
    history = kernels_over_epochs(
        args.store,
        args.model.split(":", 1)[1],
        args.layer,
        epochs=epochs,
        channel_order="BGR" if args.bgr else None,
    )
    norm = args.norm or "layer"
    grid = history.grid(norm, reduce=args.reduce, limit=args.limit or 16)
    if args.npy is not None:
        write_npy(args.npy, history.weights)
    if args.out is not None:
        if args.out.suffix.lower() == ".gif":
            from convscope.render.kernels import save_kernel_animation

            frames = history.frames(norm, reduce=args.reduce, cols=args.cols)
            announce(save_kernel_animation(frames, args.out))
        else:
            write_figure(grid.figure(), args.out)
    healths = history.health() if args.health or args.health_out else None
    if args.health_out is not None:
        write_figure(history.health_figure(), args.health_out)
    document = history.to_dict() | {
        "normalization": norm,
        "reduce": grid.reduce,
        "epochs": [
            {"epoch": e} | ({"health": h.to_dict()} if healths is not None else {})
            for e, h in zip(history.epochs, healths or [None] * len(history.epochs), strict=True)
        ],
    }
    if args.json:
        print_json(document)
        return 0
    out = console()
    shape = "×".join(str(s) for s in document["shape"])
    out.print(
        f"[bold]{escape(history.model)} ({history.run_id}) · {escape(history.layer)}[/]: {shape}, "
        f"epochs {', '.join(str(e) for e in history.epochs)}"
    )
    if healths is not None:
        from convscope.render.kernels import health_over_epochs_table

        out.print(health_over_epochs_table(history.epochs, healths))
    if args.out is None:
        out.print("[dim]add --out FILE.png (or .gif) to draw the kernels over epochs[/]")
    return 0


def run_apply_kernel(args: argparse.Namespace) -> int:
    from convscope.probe.kernels import apply_kernel

    model = load(args)
    image = chosen_image(args, model, resized=not args.full_size)
    result = apply_kernel(
        model,
        args.layer,
        args.kernel,
        image,
        full_size=args.full_size,
        channel_order="BGR" if args.bgr else None,
    )
    if args.npy is not None:
        write_npy(args.npy, result.response)
    if args.out is not None:
        write_figure(result.figure(), args.out)
    data = result.to_dict()
    if args.json:
        print_json(data)
        return 0
    out = console()
    out.print(
        f"[bold]{escape(model_title(data['model'], data['weights']))} · {escape(data['layer'])} "
        f"· kernel {data['kernel']}[/] "
        f"on {data['image']}: "
        f"response {data['response_shape'][1]}×{data['response_shape'][0]}, "
        f"min {data['min']:.3g}, max {data['max']:.3g}, mean {data['mean']:.3g}, "
        f"{data['positive_share']:.0%} positive"
    )
    if args.out is None:
        out.print("[dim]add --out FILE.png to see the image beside its response[/]")
    return 0
