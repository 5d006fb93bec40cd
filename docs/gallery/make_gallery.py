"""Rebuild the gallery: every picture of the reference tutorials, made with the convscope CLI.

Trains ``lenet`` and ``lenet5`` on MNIST (recording a run so kernels over epochs can be
shown), writes a ResNet-50 weights file (random initialisation: no pretrained weights
can be downloaded here), then runs each command below in this folder and writes
``README.md`` with every picture and the exact command that made it.

    .venv/bin/python docs/gallery/make_gallery.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONVSCOPE = [sys.executable, "-m", "convscope"]


@dataclass(frozen=True)
class Entry:
    """One picture: a heading, what it reproduces, and the command (run in this folder)."""

    title: str
    reference: str
    command: str
    output: str


def entries(lenet_run: str) -> list[Entry]:
    """The gallery, in the order of the references."""
    return [
        Entry("LeNet: first conv layer, 20 kernels 5x5 (min-max per kernel)",
              "lenet-kernels-mnist: first layer grid (4x5, gray)",
              "convscope kernels models/lenet.ckpt --layer conv2d_1 --out lenet-conv2d_1.png",
              "lenet-conv2d_1.png"),
        Entry("LeNet: second conv layer, 20 of 50 kernels, one row per kernel over its 20 input channels",
              "lenet-kernels-mnist: second layer grid",
              "convscope kernels models/lenet.ckpt --layer conv2d_2 --per-channel --limit 20 "
              "--out lenet-conv2d_2.png",
              "lenet-conv2d_2.png"),
        Entry("LeNet: second conv layer reduced (L2 norm over the 20 input channels)",
              "(convscope) deeper layers reduced, meaning stated in the caption",
              "convscope kernels models/lenet.ckpt --layer conv2d_2 --reduce norm "
              "--out lenet-conv2d_2-norm.png",
              "lenet-conv2d_2-norm.png"),
        Entry("LeNet: first-layer kernels over training epochs (epoch 0 = before training)",
              "(convscope) kernels of a recorded run",
              f"convscope kernels run:{lenet_run} --store models/runs --layer conv2d_1 "
              "--epochs all --out lenet-conv2d_1-epochs.png",
              "lenet-conv2d_1-epochs.png"),
        Entry("LeNet: kernel health (norms, duplicates, high-frequency share)",
              "(convscope) 'noisy kernels' as numbers",
              "convscope kernels models/lenet.ckpt --layer conv2d_1 --health "
              "--health-out lenet-conv2d_1-health.png --out lenet-conv2d_1-diverging.png "
              "--norm diverging",
              "lenet-conv2d_1-health.png"),
        Entry("ResNet-50 conv1: 64 kernels 7x7x3 as an 8x8 RGB mosaic (random init weights file)",
              "resnet50-first-layer-kernels: 8x8 mosaic, all three channels in the right order",
              "convscope kernels resnet50 --weights models/resnet50-random.pth --layer conv1 "
              "--out resnet50-conv1.png",
              "resnet50-conv1.png"),
        Entry("ResNet-50 conv1 kernel 0 applied to a photo",
              "resnet50-first-layer-kernels: the kernel's response on a photo",
              "convscope apply-kernel resnet50 --weights models/resnet50-random.pth --layer conv1 "
              "--kernel 0 --image sample:china --full-size --out resnet50-conv1-k0-china.png",
              "resnet50-conv1-k0-china.png"),
        Entry("LeNet-5 architecture diagram",
              "lenet5-model-features-kernels: plot_model diagram (no graphviz needed)",
              "convscope diagram models/lenet5.ckpt --out lenet5-diagram.svg",
              "lenet5-diagram.svg"),
        Entry("Inception + residual architecture diagram: branches and merges",
              "architectures-hidden-umap-fashion-mnist: the models compared",
              "convscope diagram inception-residual --out inception-residual-diagram.svg",
              "inception-residual-diagram.svg"),
        Entry("LeNet-5: feature maps after each max-pool, MNIST test image 12",
              "lenet5-model-features-kernels: feature maps of test image 12",
              "convscope features models/lenet5.ckpt --image mnist:test:12 "
              "--layers max_pooling2d_1,max_pooling2d_2 --out lenet5-features-12.png",
              "lenet5-features-12.png"),
        Entry("Convolution arithmetic on real numbers: one output unit of conv2d_1",
              "conv-pool-layer-outputs: the 3x3 (here 5x5) kernel sum",
              "convscope explain models/lenet5.ckpt --layer conv2d_1 --image mnist:test:12 "
              "--at 10,12 --out lenet5-explain-conv.png",
              "lenet5-explain-conv.png"),
        Entry("Max pooling arithmetic: the 2x2 window and its max",
              "conv-pool-layer-outputs: 2x2 max pooling halves 24x24 to 12x12",
              "convscope explain models/lenet5.ckpt --layer max_pooling2d_1 --image mnist:test:12 "
              "--at 5,6 --out lenet5-explain-pool.png",
              "lenet5-explain-pool.png"),
        Entry("LeNet-5: activation maximisation of all ten classes",
              "lenet5-model-features-kernels: gradient ascent from noise per class",
              "convscope maximize models/lenet5.ckpt --class all --out lenet5-maximize.png",
              "lenet5-maximize.png"),
        Entry("LeNet-5: where test image 12 decided the answer",
              "(convscope) saliency, Grad-CAM, integrated gradients, occlusion",
              "convscope attribute models/lenet5.ckpt --image mnist:test:12 --method all "
              "--out lenet5-attribution-12.png",
              "lenet5-attribution-12.png"),
    ]  # fmt: skip


def run(command: str, *, capture: bool = False) -> str:
    """Run a ``convscope ...`` command line in this folder; fail loudly."""
    args = shlex.split(command)
    if args[0] == "convscope":
        args = CONVSCOPE + args[1:]
    print(f"$ {command}", flush=True)
    done = subprocess.run(args, cwd=HERE, check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def prepare_models(epochs: int) -> str:
    """Train lenet and lenet5, write the ResNet-50 weights; returns the lenet run id."""
    models = HERE / "models"
    models.mkdir(exist_ok=True)
    run_file = models / "lenet-run.txt"
    if run_file.exists() and (models / "lenet5.ckpt").exists():
        return run_file.read_text().strip()  # trained by an earlier call: delete models/ to retrain
    out = run(
        f"convscope train lenet --data mnist --epochs {epochs} --store models/runs "
        "--save models/lenet.ckpt --json",
        capture=True,
    )
    lenet_run = json.loads(out)["run_id"]
    run(
        f"convscope train lenet5 --data mnist --epochs {epochs} --store models/runs "
        "--save models/lenet5.ckpt"
    )
    weights = models / "resnet50-random.pth"
    if not weights.exists():
        import torch
        from torchvision.models import resnet50

        torch.manual_seed(0)
        torch.save(resnet50(weights=None).state_dict(), weights)
    run_file.write_text(lenet_run)
    return lenet_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of both LeNets")
    parser.add_argument("--prepare-only", action="store_true", help="only train / write models")
    args = parser.parse_args()
    os.environ.setdefault("COLUMNS", "100")
    lenet_run = prepare_models(args.epochs)
    if args.prepare_only:
        return
    lines = [
        "# Gallery",
        "",
        "Every picture of the reference tutorials, made with the convscope CLI from models",
        f"trained here (`lenet` and `lenet5`, {args.epochs} epochs on MNIST) and a ResNet-50",
        "weights file of random initialisation (no pretrained weights can be downloaded",
        "on the machine that built this gallery; with real ImageNet weights the same",
        "command shows the edge and colour detectors of the reference). Rebuild with",
        "`.venv/bin/python docs/gallery/make_gallery.py`; commands run in `docs/gallery/`.",
        "",
    ]
    for entry in entries(lenet_run):
        started = time.perf_counter()
        run(entry.command)
        seconds = time.perf_counter() - started
        shown = entry.command.replace(f"run:{lenet_run}", "run:LENET_RUN")
        lines += [
            f"## {entry.title}",
            "",
            f"Reproduces: {entry.reference}.",
            "",
            f"![{entry.title}]({entry.output})",
            "",
            "```bash",
            shown,
            "```",
            "",
            f"({seconds:.1f} s on the machine that built the gallery)",
            "",
        ]
    (HERE / "README.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
