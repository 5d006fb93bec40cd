"""Activation maximisation as a job: progress, single flight, cancel, result, picture.

To hold a job at a known point, a test puts a gate on the pooled model: a forward
pre-hook that waits while the ascent's batch (``starts`` images) goes through, so the
job is certainly running when the test asks again or cancels.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import convscope
from convscope.serve.app import create_app
from convscope.serve.state import ServeConfig

MODEL = "lenet5"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    config = ServeConfig(store=tmp_path_factory.mktemp("serve") / "runs")
    with TestClient(create_app(config), base_url="http://127.0.0.1") as test_client:
        yield test_client


OPEN = 10_000
"""Permits that let a gated job run to its end."""


@contextmanager
def gate(client: TestClient, batch: int) -> Iterator[threading.Semaphore]:
    """Let a forward pass of ``batch`` inputs on the pooled model through only for a permit
    (``release(n)``: n more passes); every pass goes through once the block ends."""
    module = client.app.state.convscope.models.get(MODEL).module
    permits = threading.Semaphore(0)

    def wait(_module, inputs) -> None:
        if inputs[0].shape[0] == batch:
            permits.acquire(timeout=60)

    handle = module.register_forward_pre_hook(wait)
    try:
        yield permits
    finally:
        permits.release(OPEN)
        handle.remove()


def start(client: TestClient, body: dict, status: int = 200) -> dict:
    response = client.post(f"/api/models/{MODEL}/maximize", json=body)
    assert response.status_code == status, response.text
    return response.json()


def poll(client: TestClient, job: str, until, timeout: float = 60) -> dict:
    """The job's status once ``until(status)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/jobs/{job}").json()
        if until(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.02)


def test_a_job_finishes_with_the_librarys_result_and_picture(client: TestClient) -> None:
    body = {"class": 3, "steps": 12, "starts": 2, "seed": 1}
    job = start(client, body)["job"]
    done = poll(client, job, lambda d: d["status"] == "done")
    assert done["status"] == "done" and done["progress"] == 1.0, done
    expected = convscope.maximize(convscope.load_model(MODEL), 3, steps=12, starts=2, seed=1)
    result = dict(done["result"])
    assert result.pop("image") == f"api/jobs/{job}/image.png"
    result.pop("seconds")
    reference = expected.to_dict()
    reference.pop("seconds")
    assert result == reference
    picture = client.get(f"/api/jobs/{job}/image.png")
    assert picture.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(picture.content)).convert("L"))
    assert pixels.shape[0] > 50 and pixels.std() > 5


def test_progress_moves_with_the_ascent(client: TestClient) -> None:
    body = {"class": 2, "steps": 10, "starts": 3}
    with gate(client, batch=3) as opened:
        job = start(client, body)["job"]
        opened.release(3)  # three ascent steps, then the fourth waits
        moved = poll(client, job, lambda d: d["progress"] >= 0.3)
        assert (moved["status"], moved["progress"]) == ("running", 0.3)
        opened.release(OPEN)
        assert poll(client, job, lambda d: d["status"] == "done")["progress"] == 1.0


def test_the_same_request_while_it_runs_joins_the_job(client: TestClient) -> None:
    body = {"class": 5, "steps": 6, "starts": 3}
    with gate(client, batch=3) as opened:
        first = start(client, body)["job"]
        running = poll(client, first, lambda d: d["status"] == "running")
        assert running["status"] == "running" and running["progress"] == 0
        assert start(client, body)["job"] == first
        picture = client.get(f"/api/jobs/{first}/image.png")
        assert picture.status_code == 409 and "running" in picture.json()["error"]
        opened.release(OPEN)
        assert poll(client, first, lambda d: d["status"] == "done")["status"] == "done"
    again = start(client, body)["job"]
    assert again != first  # finished: asking again starts anew
    poll(client, again, lambda d: d["status"] == "done")


def test_delete_cancels_a_running_job(client: TestClient) -> None:
    body = {"class": 1, "steps": 50, "starts": 3}
    with gate(client, batch=3) as opened:
        job = start(client, body)["job"]
        poll(client, job, lambda d: d["status"] == "running")
        response = client.delete(f"/api/jobs/{job}")
        assert response.status_code == 200
        opened.release(OPEN)
        cancelled = poll(client, job, lambda d: d["status"] not in ("queued", "running"))
    assert cancelled["status"] == "cancelled" and cancelled["result"] is None
    assert client.get(f"/api/jobs/{job}/image.png").status_code == 404


def test_a_channel_job_runs(client: TestClient) -> None:
    job = start(client, {"channel": "conv2d_1:2", "steps": 4, "starts": 1})["job"]
    done = poll(client, job, lambda d: d["status"] not in ("queued", "running"))
    assert done["status"] == "done", done
    assert done["result"]["objective"] == "mean"
    assert done["result"]["targets"][0]["layer"] == "conv2d_1"


def test_unknown_jobs_are_404(client: TestClient) -> None:
    for method, url in (("GET", "/api/jobs/nosuch"), ("DELETE", "/api/jobs/nosuch"),
                        ("GET", "/api/jobs/nosuch/image.png")):  # fmt: skip
        response = client.request(method, url)
        assert response.status_code == 404 and "no job 'nosuch'" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "not JSON"),
        ([3], "JSON object"),
        ({}, "one of them"),
        ({"class": 3, "channel": "conv2d_1:0"}, "one of them"),
        ({"class": 3, "lr": 1}, "unknown maximize option 'lr'"),
        ({"class": 10}, "class"),
        ({"class": -1}, "class"),
        ({"class": "zebra"}, "zebra"),
        ({"class": True}, "index or a name"),
        ({"class": [1, 2]}, "index or a name"),
        ({"channel": "conv9:0"}, "conv9"),
        ({"channel": "conv2d_1:6"}, "conv2d_1"),
        ({"channel": 3}, "LAYER:C"),
        ({"class": 3, "steps": 0}, "steps"),
        ({"class": 3, "steps": "10"}, "steps"),
        ({"class": 3, "starts": 1000}, "starts"),
        ({"class": 3, "seed": -1}, "seed"),
        ({"class": 3, "objective": "mean"}, "objective"),
        ({"channel": "conv2d_1:0", "objective": "prob"}, "objective"),
        ({"class": 3, "objective": "loud"}, "objective"),
    ],
)
def test_bad_maximize_requests_are_400(client: TestClient, body, says: str) -> None:
    url = f"/api/models/{MODEL}/maximize"
    if isinstance(body, str):
        response = client.post(url, content=body, headers={"content-type": "application/json"})
    else:
        response = client.post(url, json=body)
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]


def test_maximize_on_an_unknown_or_path_model_is_refused(client: TestClient) -> None:
    unknown = client.post("/api/models/lenet55/maximize", json={"class": 1})
    assert unknown.status_code == 404 and "did you mean lenet5" in unknown.json()["error"]
    path = client.post("/api/models/net.ckpt/maximize", json={"class": 1})
    assert path.status_code == 400 and "never names a file" in path.json()["error"]


def test_a_huge_or_deeply_nested_maximize_body_is_a_400(client) -> None:
    huge = client.post("/api/models/lenet5/maximize", content=b"[" * 70_000)
    assert huge.status_code == 400 and "over 65,536 bytes" in huge.json()["error"]
    nested = client.post("/api/models/lenet5/maximize", content=b"[" * 20_000 + b"]" * 20_000)
    assert nested.status_code in (400, 413) and "error" in nested.json()
