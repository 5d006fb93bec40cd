"""The result cache: LRU within its bytes, single-flight, failures never kept."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest

from convscope.serve.cache import OVERHEAD, ResultCache, approx_size, result_key


def test_least_recently_used_results_go_first_to_stay_within_the_bytes() -> None:
    cache = ResultCache(max_bytes=300)
    for key in "abc":
        cache.put(key, b"", size=100)
    assert cache.get("a") == b""  # a is now the most recently used ...
    cache.put("d", b"", size=100)
    assert "b" not in cache and all(key in cache for key in "acd")  # ... so b went
    assert cache.nbytes == 300 and len(cache) == 3
    cache.put("e", b"", size=250)
    assert list(key for key in "acde" if key in cache) == ["e"] and cache.nbytes == 250


def test_a_result_larger_than_the_cache_is_answered_not_kept() -> None:
    cache = ResultCache(max_bytes=1000)
    big = np.zeros(1000, dtype=np.uint8)
    assert cache.get_or_compute("big", lambda: big) is big
    assert "big" not in cache and cache.nbytes == 0
    assert ResultCache(0).get_or_compute("k", lambda: 1) == 1  # --cache-mb 0: keeps nothing


def test_hits_and_misses_are_counted() -> None:
    cache = ResultCache()
    calls: list[int] = []
    for _ in range(3):
        assert cache.get_or_compute(("k",), lambda: calls.append(1) or 42) == 42
    assert calls == [1] and cache.misses == 1 and cache.hits == 2 and cache.waits == 0


def test_concurrent_requests_for_one_key_compute_once() -> None:
    cache = ResultCache()
    started, release = threading.Event(), threading.Event()
    computed: list[int] = []

    def slow() -> str:
        computed.append(1)
        started.set()
        release.wait(10)
        return "value"

    with ThreadPoolExecutor(4) as threads:
        first = threads.submit(cache.get_or_compute, "k", slow)
        assert started.wait(10)
        others = [threads.submit(cache.get_or_compute, "k", slow) for _ in range(3)]
        while cache.waits < 3:  # every other request is waiting on the first
            threading.Event().wait(0.01)
        release.set()
        assert first.result() == "value" and [f.result() for f in others] == ["value"] * 3
    assert computed == [1] and cache.misses == 1 and cache.waits == 3


def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    cache = ResultCache()
    started, release = threading.Event(), threading.Event()

    def failing() -> None:
        started.set()
        release.wait(10)
        raise ValueError("bad layer")

    with ThreadPoolExecutor(2) as threads:
        first = threads.submit(cache.get_or_compute, "k", failing)
        assert started.wait(10)
        second = threads.submit(cache.get_or_compute, "k", failing)
        while cache.waits < 1:
            threading.Event().wait(0.01)
        release.set()
        for future in (first, second):
            with pytest.raises(ValueError, match="bad layer"):
                future.result()
    assert "k" not in cache
    assert cache.get_or_compute("k", lambda: "ok") == "ok"  # the next request tries again


def test_sizes_are_estimated_from_the_data() -> None:
    @dataclass
    class Result:
        maps: np.ndarray
        png: bytes
        meta: dict

    value = Result(np.zeros((4, 8, 8), dtype=np.float32), b"x" * 100, {"min": 0.0})
    size = approx_size(value)
    assert 4 * 8 * 8 * 4 + 100 <= size <= 4 * 8 * 8 * 4 + 100 + 10 * OVERHEAD
    shared = np.zeros(1000, dtype=np.uint8)
    assert approx_size([shared, shared]) < 2 * shared.nbytes  # counted once


def test_keys_do_not_depend_on_the_order_of_the_parameters() -> None:
    one = result_key("lenet5", "random init (seed 0)", "features", layer="a", image="b")
    two = result_key("lenet5", "random init (seed 0)", "features", image="b", layer="a")
    assert one == two and hash(one) == hash(two)
    assert result_key("m", "w", "r", layers=["a", "b"]) == result_key(
        "m", "w", "r", layers=("a", "b")
    )
    assert one != result_key("run:x@1", "run x epoch 1", "features", layer="a", image="b")


def test_a_model_files_stamp_follows_its_changes(tmp_path) -> None:
    import os

    from convscope.serve.modelpool import file_stamp

    path = tmp_path / "net.py"
    path.write_text("x = 1\n")
    first = file_stamp(str(path))
    assert first and file_stamp(f"{path}:build") == first
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 10**9))
    assert file_stamp(str(path)) != first
    assert file_stamp("lenet5") == "" and file_stamp("run:abc@1") == ""


def test_the_model_routes_answer_a_repeat_from_the_cache(tmp_path) -> None:
    from convscope.data.datasets import load_dataset
    from convscope.serve.state import ServeConfig
    from tests.serve.conftest import make_client

    load_dataset("mnist", "test")  # a request never downloads a dataset
    model, layer, image = "lenet5", "conv2d_1", "mnist:test:0"
    urls = [
        f"/api/models/{model}/kernels?layer={layer}",
        f"/api/models/{model}/kernels.png?layer={layer}&norm=layer",
        f"/api/models/{model}/features?layer={layer}&image={image}",
        f"/api/models/{model}/features.png?layer={layer}&image={image}",
        f"/api/models/{model}/explain?layer={layer}&image={image}&at=3,4",
        f"/api/models/{model}/explain.png?layer={layer}&image={image}&at=3,4",
        f"/api/models/{model}/attribute?image={image}&method=saliency",
        f"/api/models/{model}/attribute.png?image={image}&method=saliency",
    ]
    with make_client(ServeConfig(store=tmp_path / "runs")) as client:
        cache = client.app.state.convscope.cache
        first = [client.get(url) for url in urls]
        assert all(answer.status_code == 200 for answer in first), [a.text for a in first]
        misses = cache.misses
        again = [client.get(url) for url in urls]
        assert cache.misses == misses  # nothing computed again
        assert [a.content for a in again] == [a.content for a in first]
