"""Activation maximisation of all ten LeNet-5 classes: time and quality, against the reference loop.

1. ``seconds_10_classes``: ``convscope.probe.maximize.maximize(model, "all")`` with its
   defaults (all starts of all ten classes in one batch, regularised, early stop), the
   best of ``--repeats``. Target: under 10 s on 2 cores.
2. ``mean_target_prob``: the mean probability of the target class over the ten
   synthesised inputs (softmax of the logits, no transforms). Target: above 0.9.
3. ``speedup_vs_sequential``: the same ascent (same defaults) run one class at a time,
   timed in the same run: what batching the ten classes buys.
4. ``speedup_vs_reference_500_step``: the reference's procedure
   (lenet5-model-features-kernels), one class at a time: 500 steps of plain gradient
   ascent on the softmax output with RMS-normalised gradients and step 1, from uniform
   noise; also with its break rule (stop when the loss falls below its first value).
   It is cheap per step (one image, no regularisers) but its softmax gradient underflows
   for classes the noise start does not resemble, so its mean target probability is
   reported beside the time.

The model is ``--model CKPT`` or, without one, ``lenet5`` trained here for ``--epochs``
on the full MNIST training set. The last line of stdout is one JSON object.

    python benchmarks/maximize.py [--model lenet5.ckpt] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from convscope.data.datasets import load_dataset
from convscope.models.loaded import LoadedModel
from convscope.models.loading import load_model
from convscope.probe.maximize import ROSE, ascent_size, maximize, process_compute_mode
from convscope.probe.predict import probabilities
from convscope.train.loop import TrainConfig
from convscope.train.trainer import fit


def trained_lenet5(epochs: int) -> LoadedModel:
    """``lenet5`` trained ``epochs`` on all 60,000 MNIST training images (seeded)."""
    model = load_model("lenet5", seed=0)
    train = load_dataset("mnist", "train")
    fit(model, train, None, TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, val_split=0))
    return model


def test_accuracy(model: LoadedModel) -> float:
    """Accuracy on the 10,000 MNIST test images."""
    test = load_dataset("mnist", "test")
    batch = model.input_spec.normalize(test.images)
    predicted = probabilities(model, batch).argmax(dim=1).numpy()
    return float(np.mean(predicted == test.labels))


def reference_loop(
    model: LoadedModel, steps: int = 500, break_rule: bool = True
) -> tuple[float, list[float]]:
    """The reference's gradient ascent, one class after the other; (seconds, target probs).

    As published: loss = mean softmax output of class k; gradient divided by its RMS
    (+1e-5); input += gradient; with ``break_rule``, every 10 steps stop if all
    |gradient| < 1e-6 or if the loss fell below the first checked loss. Start: uniform
    noise, seed 0. Runs with the compute settings maximize() uses for a batch this small
    (one thread, native convolutions), so the comparison is of the method, not of them.
    """
    module = model.module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    spec = model.input_spec
    probs = []
    started = time.perf_counter()
    for k in range(10):
        rng = np.random.default_rng(0)
        noise = (255 - rng.integers(0, 255, (1, 1, spec.height, spec.width))) / 255.0
        x = torch.tensor(noise, dtype=torch.float32, requires_grad=True)
        first = 0.0
        for step in range(steps):
            loss = module(x).softmax(dim=1)[:, k].mean()
            (grad,) = torch.autograd.grad(loss, x)
            grad = grad / (grad.pow(2).mean().sqrt() + 1e-5)
            if break_rule and step % 10 == 0:
                value = float(loss.detach())
                if bool((grad.abs() < 1e-6).all()):
                    break
                if first != 0 and first > value:
                    break
                if first == 0:
                    first = value
            with torch.no_grad():
                x += grad
        with torch.no_grad():
            probs.append(float(module(x).softmax(dim=1)[0, k]))
    seconds = time.perf_counter() - started
    for p in module.parameters():
        p.requires_grad_(True)
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = onednn
    return seconds, probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a trained lenet5 checkpoint (default: train one here)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to train without --model")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings")
    parser.add_argument("--out", help="also save the ten-class figure here (.png)")
    args = parser.parse_args()
    model = load_model(args.model) if args.model else trained_lenet5(args.epochs)
    accuracy = test_accuracy(model)
    timings, result = [], None
    for _ in range(args.repeats):
        started = time.perf_counter()
        with process_compute_mode(ascent_size(model, 10)):  # as the CLI runs it
            result = maximize(model, "all")
        timings.append(time.perf_counter() - started)
    assert result is not None
    ours = min(timings)
    probs = [t.prob for t in result.targets]
    converged = sum(t.status in ROSE for t in result.targets)
    top1 = sum(t.top[0][0] == t.target.label for t in result.targets)
    started = time.perf_counter()
    with process_compute_mode(ascent_size(model, 1)):
        one_by_one = [maximize(model, k).targets[0] for k in range(10)]
    sequential = time.perf_counter() - started
    sequential_probs = [t.prob for t in one_by_one]
    baseline, baseline_probs = reference_loop(model, break_rule=False)
    published, published_probs = reference_loop(model, break_rule=True)
    if args.out:
        result.save(args.out)
    settings = result.settings
    print(
        f"lenet5 (test accuracy {accuracy:.4f}): 10 classes x {settings.starts} starts, "
        f"up to {settings.steps} steps, in {ours:.2f} s (best of {args.repeats}); "
        f"mean target probability {np.mean(probs):.4f}, min {min(probs):.4f}; "
        f"{converged}/10 rose, {top1}/10 classified as their target"
    )
    print(
        f"the same ascent one class at a time: {sequential:.2f} s, mean target probability "
        f"{np.mean(sequential_probs):.4f}; batching all classes is {sequential / ours:.1f}x faster"
    )
    print(
        f"the reference's plain gradient ascent, 500 steps, one class at a time: {baseline:.2f} s, "
        f"mean target probability {np.mean(baseline_probs):.4f} "
        f"({sum(p > 0.9 for p in baseline_probs)}/10 classes above 0.9)"
    )
    print(
        f"the same with the reference's break rule: {published:.2f} s, "
        f"mean target probability {np.mean(published_probs):.4f}"
    )
    print(
        json.dumps(
            {
                "seconds_10_classes": round(ours, 3),
                "mean_target_prob": round(float(np.mean(probs)), 4),
                "min_target_prob": round(float(min(probs)), 4),
                "classes_converged": converged,
                "classes_top1": top1,
                "steps": settings.steps,
                "starts": settings.starts,
                "steps_run": [t.steps for t in result.targets],
                "sequential_s": round(sequential, 3),
                "sequential_mean_target_prob": round(float(np.mean(sequential_probs)), 4),
                "speedup_vs_sequential": round(sequential / ours, 2),
                "reference_500_step_s": round(baseline, 3),
                "reference_mean_target_prob": round(float(np.mean(baseline_probs)), 4),
                "reference_classes_above_0_9": int(sum(p > 0.9 for p in baseline_probs)),
                "speedup_vs_reference_500_step": round(baseline / ours, 2),
                "reference_with_break_s": round(published, 3),
                "reference_with_break_mean_target_prob": round(float(np.mean(published_probs)), 4),
                "model_test_accuracy": round(accuracy, 4),
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
