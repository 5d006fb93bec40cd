"""Attribution and architecture commands: ``attribute`` and ``diagram``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from convscope.cli.app import add_command
from convscope.cli.model_cmds import add_model_arguments, load, note_upscaled
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
from convscope.files import check_writable

if TYPE_CHECKING:
    pass

MAX_ATTRIBUTION_IMAGES = 8
"""Most images one ``attribute`` call draws (one row each)."""

DIAGRAM_FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``attribute`` and ``diagram`` commands."""
    attribute = add_command(
        commands,
        "attribute",
        "Show which pixels the score of a class depends on: saliency, Grad-CAM,\n"
        "integrated gradients, occlusion, overlaid on the image with colour bars.\n\n"
        "The score is the model's output for the target class: the logit, or the\n"
        "probability for models that end in a softmax. TARGET defaults to the\n"
        "predicted class; give an index or a class name. Grad-CAM uses the last\n"
        "convolution unless --layer names another layer.",
        "  convscope attribute lenet5 --image mnist:test:0 --method all --out attr.png\n"
        "  convscope attribute residual --image fashion-mnist:test:0-4 --method gradcam,ig\n"
        "  convscope attribute resnet50 --weights r50.pth --image cat.jpg --method gradcam \\\n"
        "      --layer layer4 --target 'tabby' --out cat.png\n"
        "  convscope attribute run.ckpt --image mnist:test:3 --method ig --steps 200 --json\n"
        "  convscope attribute lenet5 --image mnist:test:0 --method smoothgrad,gradshap,deeplift",
    )
    add_model_arguments(attribute)
    attribute.add_argument(
        "--image",
        required=True,
        metavar="SPEC",
        help=f"the image(s), up to {MAX_ATTRIBUTION_IMAGES}",
    )
    attribute.add_argument(
        "--method",
        required=True,
        metavar="M[,M...]",
        help="saliency, gradcam, ig, occlusion (all: these four), smoothgrad, gradshap, "
        "deeplift, guided-gradcam; comma-separated",
    )
    attribute.add_argument(
        "--target", metavar="C", help="class index or name to explain (default: the predicted one)"
    )
    attribute.add_argument(
        "--layer", metavar="L", help="Grad-CAM's layer (default: the last convolution)"
    )
    attribute.add_argument(
        "--steps", type=int, default=50, metavar="N", help="integrated-gradients steps (50)"
    )
    attribute.add_argument(
        "--samples",
        type=int,
        default=16,
        metavar="N",
        help="noisy copies for smoothgrad and gradshap (16; seeded by --seed)",
    )
    attribute.add_argument(
        "--window",
        type=int,
        metavar="PX",
        help="occlusion window side (default: ~1/7 of the input)",
    )
    attribute.add_argument(
        "--stride", type=int, metavar="PX", help="occlusion stride (default: half the window)"
    )
    attribute.add_argument(
        "--baseline",
        choices=("black", "white", "mean"),
        default="black",
        help="reference input of ig and occlusion: black (default), white, or the dataset mean",
    )
    add_out_argument(attribute, "the figure")
    attribute.add_argument(
        "--npy",
        type=output_file,
        metavar="F",
        help="write the maps to F.npy as N x methods x H x W (methods in --method order)",
    )
    attribute.add_argument("--json", action="store_true", help="print JSON instead of a table")
    attribute.set_defaults(handler=run_attribute)

    diagram = add_command(
        commands,
        "diagram",
        "Draw the architecture: every layer with its type, output shape and parameters,\n"
        "and the branches and merges (concatenations, residual additions) between them.\n\n"
        "The graph comes from tracing the forward pass with torch.fx; a model that\n"
        "cannot be traced is drawn as its module tree, with a warning. Big models are\n"
        "collapsed to the deepest module depth that keeps at most --max-nodes boxes.",
        "  convscope diagram inception --out inception.svg\n"
        "  convscope diagram resnet50 --out resnet50.png\n"
        "  convscope diagram resnet50 --depth 3 --out resnet50-full.svg\n"
        "  convscope diagram residual --out residual.dot      (Graphviz source)\n"
        "  convscope diagram residual --engine dot --out residual.pdf\n"
        "  convscope diagram lenet5 --json",
    )
    add_model_arguments(diagram)
    diagram.add_argument(
        "--out",
        type=output_file,
        metavar="F",
        help="write the diagram to F (.svg, .png, .pdf, or .dot/.gv for Graphviz source)",
    )
    diagram.add_argument(
        "--depth",
        type=int,
        metavar="N",
        help="draw modules down to N levels of nesting (default: as deep as --max-nodes allows)",
    )
    diagram.add_argument(
        "--max-nodes",
        type=int,
        default=60,
        metavar="N",
        help="collapse deeper modules until the graph has at most N boxes (60)",
    )
    diagram.add_argument(
        "--engine",
        choices=("python", "dot"),
        default="python",
        help="python: convscope's own layout (default); dot: Graphviz's `dot` program",
    )
    diagram.add_argument("--json", action="store_true", help="print the graph as JSON")
    diagram.set_defaults(handler=run_diagram)


def run_attribute(args: argparse.Namespace) -> int:
    from convscope.data.spec import resolve_images
    from convscope.probe.attribute import attribute_images, parse_methods
    from convscope.render.attribution import attribution_figure, attribution_table

    methods = parse_methods(args.method)
    if args.layer is not None and "gradcam" not in methods:
        raise ConvscopeError("--layer chooses Grad-CAM's layer; add gradcam to --method")
    _check_outputs(args.out, args.npy)
    model = load(args)
    images = resolve_images(args.image, input_spec=model.input_spec)
    if len(images) > MAX_ATTRIBUTION_IMAGES:
        raise ConvscopeError(
            f"{args.image!r} names {len(images)} images; attribute draws at most "
            f"{MAX_ATTRIBUTION_IMAGES} at a time (use a smaller range)"
        )
    note_upscaled(images, model)
    results = attribute_images(
        model,
        images,
        methods,
        target=args.target,
        layer=args.layer,
        steps=args.steps,
        window=args.window,
        stride=args.stride,
        baseline=args.baseline,
        samples=args.samples,
        seed=args.seed,
    )
    if args.out is not None:
        write_figure(attribution_figure(results), args.out)
    if args.npy is not None:
        import numpy as np

        write_npy(args.npy, np.stack([r.stacked() for r in results]))
    if args.json:
        data = [r.to_dict() for r in results]
        print_json(data[0] if len(data) == 1 else data)
    else:
        console().print(attribution_table(results))
    return 0


def _check_outputs(out: Path | None, npy: Path | None) -> None:
    """Fail before the work, not after it, on a file that cannot be written."""
    from convscope.render.figures import figure_format

    if out is not None:
        figure_format(out)
    if npy is not None and npy.suffix != ".npy":
        raise ConvscopeError(f"cannot write {npy}: an array file name must end in .npy")
    for path in (out, npy):
        if path is not None:
            check_writable(path)


def run_diagram(args: argparse.Namespace) -> int:
    from convscope.probe.graph import model_graph, require_graphviz

    if args.out is None and not args.json:
        raise ConvscopeError("give --out F (.svg, .png, .pdf or .dot) or --json")
    out = args.out
    if out is not None:
        if out.suffix.lower() not in DIAGRAM_FORMATS:
            raise ConvscopeError(
                f"cannot write {out}: the file name must end in {', '.join(DIAGRAM_FORMATS)}"
            )
        check_writable(out)
        if args.engine == "dot":
            require_graphviz()  # refused before any work
    graph = model_graph(load(args), depth=args.depth, max_nodes=args.max_nodes)
    if not graph.traced:
        sys.stderr.write(f"convscope: warning: {graph.note}\n")
    if out is not None:
        announce(graph.save(str(out), engine=args.engine))
    if args.json:
        print_json(graph.to_dict())
    return 0
