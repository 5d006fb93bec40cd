"""Probes called from several threads on one model give the numbers they give alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from convscope.models.loading import load_model
from convscope.probe.activations import capture
from convscope.probe.attribute import attribute
from convscope.probe.exclusive import exclusive, module_lock
from convscope.probe.explain import explain
from convscope.probe.features import feature_maps
from convscope.probe.maximize import maximize
from convscope.probe.streaming import activations


def _numbers(model) -> dict[str, object]:
    """One call of each probe, reduced to arrays that must match exactly."""
    return {
        "maximize": lambda: maximize(model, 3, steps=12, starts=2).targets[0].input,
        "attribute": lambda: attribute(model, "mnist:test:0", ["saliency", "gradcam"]).stacked(),
        "features": lambda: (
            feature_maps(model, "mnist:test:1", ["conv2d_1", "conv2d_2"]).layer("conv2d_2").output
        ),
        "explain": lambda: np.array(explain(model, "conv2d_2", "mnist:test:2", (3, 4)).actual),
        "activations": lambda: activations(model, "mnist:test:0-40", ["dense_1"], batch_size=16)[
            "dense_1"
        ],
    }


def test_probes_from_six_threads_match_one_at_a_time() -> None:
    model = load_model("lenet5")
    probes = _numbers(model)
    alone = {name: np.array(call()) for name, call in probes.items()}
    jobs = [name for name in probes for _ in range(2)] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda name: (name, np.array(probes[name]())), jobs))
    for name, value in together:
        np.testing.assert_array_equal(value, alone[name], err_msg=name)
    assert all(p.requires_grad for p in model.module.parameters())  # flags restored
    assert not model.module.training


def test_capture_records_only_its_own_threads_forward_passes() -> None:
    module = load_model("lenet5").module
    other_ran = threading.Event()

    def other_forward() -> None:
        with torch.no_grad():
            module(torch.zeros(3, 1, 28, 28))
        other_ran.set()

    with capture(module, ["conv2d_1"]) as captured:
        thread = threading.Thread(target=other_forward)
        thread.start()
        thread.join()
        with torch.no_grad():
            module(torch.zeros(1, 1, 28, 28))
    assert other_ran.is_set()
    assert [t.shape[0] for t in captured.calls["conv2d_1"]] == [1]  # ours only


def test_the_lock_is_per_module_and_reentrant() -> None:
    first, second = load_model("lenet5").module, load_model("lenet5").module
    assert module_lock(first) is module_lock(first)
    assert module_lock(first) is not module_lock(second)
    with exclusive(first), exclusive(first):  # a probe calling another probe
        acquired = []

        def other_model() -> None:
            with exclusive(second):  # another model is not blocked
                acquired.append(True)
            acquired.append(module_lock(first).acquire(timeout=0.2))  # this one is

        thread = threading.Thread(target=other_model)
        thread.start()
        thread.join()
        assert acquired == [True, False]
