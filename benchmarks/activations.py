"""What convscope.activations costs over a bare forward pass, and how little memory streaming takes.

1. ``hidden_vs_forward_ratio``: ``convscope.activations(residual, "fashion-mnist:test:0-10000",
   "hidden")`` (images read from the dataset in slices, normalised per batch, the
   ``hidden`` output copied out of a forward hook into one ``10000 x 128`` array) against
   a bare batched forward pass over the same 10,000 images, already normalised (the
   preprocessing is not counted for the baseline), same batch size, under
   ``torch.inference_mode``. Interleaved, best of ``--repeats``. Target: at most 1.2.
2. ``stream_peak_rss_mb``: the peak resident memory of a fresh process that streams
   ``conv2D_1`` of ``residual`` (``60000 x 32 x 28 x 28`` float32, 6.0 GB) for all 60,000
   training images into a temporary folder (``out=``), against the size of that array
   and against the process's memory just before the pass (model, dataset and imports
   loaded). The file is checked (shape, and rows equal to a direct forward pass).

The model is ``residual`` with seeded random weights (the cost does not depend on the
weights). The last line of stdout is one JSON object.

    python benchmarks/activations.py [--repeats 3] [--batch-size 256] [--skip-stream]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from convscope.data.datasets import load_dataset
from convscope.models.loading import load_model
from convscope.probe.activations import capture
from convscope.probe.streaming import activations


def bare_forward(module: torch.nn.Module, x: torch.Tensor, batch_size: int) -> float:
    """Seconds of the simplest batched forward pass over ready inputs, outputs discarded."""
    module.eval()
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            module(x[start : start + batch_size])
    return time.perf_counter() - started


def convscope_pass(model, spec: str, layer: str, batch_size: int) -> tuple[float, np.ndarray]:
    """Seconds of convscope.activations for one layer, and the array it returned."""
    started = time.perf_counter()
    result = activations(model, spec, [layer], batch_size=batch_size)
    return time.perf_counter() - started, result[layer]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stream_child(folder: str, batch_size: int) -> None:
    """In a fresh process: stream conv2D_1 of all training images to ``folder``; print JSON."""
    model = load_model("residual", seed=0)
    train = load_dataset("fashion-mnist", "train")
    activations(model, "fashion-mnist:train:0-2", ["conv2D_1"])  # warm up the code paths
    before = current_rss_mb()
    peak_before = peak_rss_mb()
    started = time.perf_counter()
    result = activations(
        model, "fashion-mnist:train:0-60000", ["conv2D_1"], batch_size=batch_size, out=folder
    )
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    path = result.paths["conv2D_1"]
    stored = np.load(path, mmap_mode="r")
    rows = [0, 31337, 59999]
    module = model.module.eval()
    with torch.inference_mode():
        direct = module.conv2D_1(model.input_spec.normalize(train.images[rows]))
    max_diff = float(np.abs(stored[rows] - direct.numpy()).max())
    print(
        json.dumps(
            {
                "shape": list(stored.shape),
                "file_bytes": path.stat().st_size,
                "array_bytes": int(stored.nbytes),
                "seconds": seconds,
                "rss_before_mb": before,
                "peak_rss_before_mb": peak_before,
                "peak_rss_mb": peak,
                "max_abs_diff_vs_direct": max_diff,
            }
        )
    )


def streamed(batch_size: int) -> dict:
    """Run :func:`stream_child` in a fresh interpreter (its own peak RSS) in a temp folder."""
    with tempfile.TemporaryDirectory(prefix="convscope-bench-") as folder:
        done = subprocess.run(
            [sys.executable, __file__, "--stream-child", folder, "--batch-size", str(batch_size)],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--skip-stream", action="store_true", help="only the timing part")
    parser.add_argument("--stream-child", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stream_child:
        stream_child(args.stream_child, args.batch_size)
        return
    model = load_model("residual", seed=0)
    test = load_dataset("fashion-mnist", "test")
    x = model.input_spec.normalize(test.images)
    spec, bs = "fashion-mnist:test:0-10000", args.batch_size
    bare_forward(model.module, x[:bs], bs)  # warm-up
    convscope_pass(model, "fashion-mnist:test:0-2", "hidden", bs)
    bare_times, ours_times = [], []
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        bare_times.append(bare_forward(model.module, x, bs))
        seconds, hidden = convscope_pass(model, spec, "hidden", bs)
        ours_times.append(seconds)
    bare, ours = min(bare_times), min(ours_times)
    with torch.inference_mode(), capture(model.module.eval(), ["hidden"]) as got:
        model.module(x[:512])
    max_diff = float(np.abs(hidden[:512] - got.output("hidden").numpy()).max())
    print(
        f"residual `hidden` of {len(x):,} test images, batch {bs}: bare forward {bare:.2f} s, "
        f"convscope.activations {ours:.2f} s ({ours / bare:.3f}x); rows vs direct: {max_diff:.2e}"
    )
    figures = {
        "images": len(x),
        "batch_size": bs,
        "bare_forward_s": round(bare, 3),
        "activations_s": round(ours, 3),
        "hidden_vs_forward_ratio": round(ours / bare, 4),
        "activations_images_per_s": round(len(x) / ours, 1),
        "hidden_max_abs_diff_vs_direct": max_diff,
        "timings_bare_s": [round(t, 3) for t in bare_times],
        "timings_activations_s": [round(t, 3) for t in ours_times],
        "threads": torch.get_num_threads(),
    }
    if not args.skip_stream:
        child = streamed(bs)
        full_mb = child["array_bytes"] / 1e6
        print(
            f"residual `conv2D_1` of 60,000 training images streamed to disk "
            f"({'x'.join(map(str, child['shape']))} float32, {full_mb:,.0f} MB) in "
            f"{child['seconds']:.1f} s: peak RSS {child['peak_rss_mb']:.0f} MB "
            f"({child['rss_before_mb']:.0f} MB before the pass)"
        )
        figures.update(
            {
                "stream_shape": child["shape"],
                "stream_array_mb": round(full_mb, 1),
                "stream_seconds": round(child["seconds"], 2),
                "stream_rss_before_mb": round(child["rss_before_mb"], 1),
                "stream_peak_rss_mb": round(child["peak_rss_mb"], 1),
                "stream_peak_over_array": round(child["peak_rss_mb"] / full_mb, 4),
                "stream_added_mb": round(child["peak_rss_mb"] - child["rss_before_mb"], 1),
                "stream_max_abs_diff_vs_direct": child["max_abs_diff_vs_direct"],
            }
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
