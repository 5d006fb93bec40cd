"""How much convscope's trainer and its recording cost, measured against baselines in one run.

1. ``trainer_vs_plain_ratio``: one epoch of ``sequential`` on Fashion-MNIST with
   convscope's Trainer against a minimal hand-written PyTorch loop (same model,
   data, batch size, channels-last layout, Adam). Target: at most 1.05.
2. ``recording_overhead_ratio``: a 2-epoch run of ``sequential`` on the whole
   Fashion-MNIST training part (48,000 images after the validation split) recording
   ``hidden`` on 1,000 probe images, every conv kernel and a checkpoint into a real
   run store (epoch 0 included), against the same run without recording.
   Target: at most 1.05.
3. ``images_per_s`` of the Trainer, and ``peak_share``: the training FLOP/s of a
   ``lenet`` epoch as a share of this CPU's peak float32 matmul rate, measured here.

Each timing is the best of ``--repeats``. The last line of stdout is one JSON object.

    python benchmarks/trainer_overhead.py [--images 24000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
import torchinfo

from convscope.data.datasets import load_dataset
from convscope.data.sampling import stratified_indices
from convscope.models.loading import load_model
from convscope.store import open_store
from convscope.train.loop import TrainConfig
from convscope.train.recording import make_probe_set
from convscope.train.run import RunSettings, StoreRecorder
from convscope.train.trainer import Trainer


def plain_epoch(model_name: str, images: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    """Seconds for one epoch of the simplest correct loop a person would write."""
    torch.manual_seed(0)
    module = load_model(model_name, seed=0).module.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    x_all = torch.from_numpy(images)
    y_all = torch.from_numpy(labels.astype(np.int64))
    started = time.perf_counter()
    order = torch.randperm(len(y_all))
    for start in range(0, len(y_all), batch_size):
        index = order[start : start + batch_size]
        x = (x_all[index].unsqueeze(1).float() / 255).contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module(x), y_all[index])
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def trainer_epoch(model_name: str, train, batch_size: int) -> float:
    """Seconds of one training epoch inside convscope's Trainer (no validation split)."""
    model = load_model(model_name, seed=0)
    trainer = Trainer(model, train, TrainConfig(epochs=1, batch_size=batch_size, val_split=0))
    trainer.run()
    return trainer.result.epochs[-1].seconds


def recorded_run(train, batch_size: int, record: bool, epochs: int = 2) -> float:
    """Wall seconds of a run (epoch 0, then ``epochs``) with or without store recording."""
    model = load_model("sequential", seed=0)
    config = TrainConfig(epochs=epochs, batch_size=batch_size)
    trainer = Trainer(model, train, config)
    with tempfile.TemporaryDirectory() as folder, open_store(folder) as store:
        if record:
            settings = RunSettings(
                model="sequential", data="fashion-mnist", config=config, record=("hidden",)
            )
            run = store.create_run(
                name="bench", model="sequential", dataset="fashion-mnist", config=settings.to_dict()
            )
            probe = make_probe_set(trainer.pixels, train.labels, trainer.val_idx, 100, 0)
            trainer.callbacks = [StoreRecorder(store, run.id, probe, settings)]
        started = time.perf_counter()
        trainer.run()
        return time.perf_counter() - started


def peak_matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """The best float32 matmul rate of this CPU, in GFLOP/s."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def lenet_training_gflops(seconds: float, images: int) -> float:
    """Achieved training GFLOP/s of a lenet epoch (forward MACs x 2 FLOPs x 3 for fwd+bwd)."""
    model = load_model("lenet")
    macs = torchinfo.summary(model.module, input_size=(1, 1, 28, 28), verbose=0).total_mult_adds
    return macs * 2 * 3 * images / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24000, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    args = parser.parse_args()
    full = load_dataset("fashion-mnist", "train")
    keep = stratified_indices(full.labels, args.images // 10, seed=0)
    train = replace(full, images=full.images[keep], labels=full.labels[keep])
    batch = 500
    plain = min(
        plain_epoch("sequential", train.images, train.labels, batch) for _ in range(args.repeats)
    )
    ours = min(trainer_epoch("sequential", train, batch) for _ in range(args.repeats))
    print(
        f"sequential epoch, {len(train)} images: plain loop {plain:.2f} s, convscope {ours:.2f} s"
    )
    timings: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        for record in (False, True):
            timings[record].append(recorded_run(full, batch, record=record))
    off, on = min(timings[False]), min(timings[True])
    print(
        f"2-epoch run, {len(full)} training images (80% train, 20% validation): "
        f"recording off {off:.2f} s, on {on:.2f} s"
    )
    lenet = min(trainer_epoch("lenet", train, 128) for _ in range(args.repeats))
    peak = peak_matmul_gflops()
    achieved = lenet_training_gflops(lenet, len(train))
    print(f"lenet epoch {lenet:.2f} s: {achieved:.1f} GFLOP/s of a {peak:.1f} GFLOP/s matmul peak")
    print(
        json.dumps(
            {
                "images": len(train),
                "plain_epoch_s": round(plain, 3),
                "trainer_epoch_s": round(ours, 3),
                "trainer_vs_plain_ratio": round(ours / plain, 4),
                "recording_off_s": round(off, 3),
                "recording_on_s": round(on, 3),
                "recording_overhead_ratio": round(on / off, 4),
                "images_per_s": round(len(train) / ours, 1),
                "lenet_epoch_s": round(lenet, 3),
                "lenet_gflops": round(achieved, 2),
                "peak_matmul_gflops": round(peak, 2),
                "peak_share": round(achieved / peak, 4),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
