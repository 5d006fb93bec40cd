"""``/api/models/{model}/examples`` (and ``.png``): what ``convscope examples --json`` prints.

Small sets are answered at once; the default set (a run's probe set) and large sets are
jobs whose result is then served from the cache; every mistake is a 4xx with one line.
Answers are compared with the library's :func:`convscope.top_activations` on the same
run of the tiny store.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import convscope

KEYS = ["model", "weights", "layer", "channel", "images", "count", "statistic", "top", "bottom"]


def wait_done(client: TestClient, job: str, timeout: float = 60) -> dict[str, Any]:
    """Poll the job until it ends; its last answer (which must be ``done``)."""
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/jobs/{job}").json()
        if data["status"] not in ("queued", "running") or time.monotonic() > deadline:
            assert data["status"] == "done", data
            return data
        time.sleep(0.05)


def same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Two examples documents equal (activations to float32 precision)."""
    expected = json.loads(json.dumps(expected))
    assert list(got) == KEYS
    for end in ("top", "bottom"):
        assert [e["spec"] for e in got[end]] == [e["spec"] for e in expected[end]]
        assert [e["class"] for e in got[end]] == [e["class"] for e in expected[end]]
        assert [e["activation"] for e in got[end]] == pytest.approx(
            [e["activation"] for e in expected[end]], rel=1e-5, abs=1e-7
        )
    rest = [k for k in KEYS if k not in ("top", "bottom")]
    assert {k: got[k] for k in rest} == {k: expected[k] for k in rest}


def url(model: str, suffix: str = "") -> str:
    return f"/api/models/{model}/examples{suffix}"


def test_a_small_set_is_answered_at_once_as_the_library_answers(
    client: TestClient, tiny_store, tiny_ids
) -> None:
    model = f"run:{tiny_ids['sequential']}"
    params = {"layer": "conv2D_3", "channel": 5, "image": "fashion-mnist:test:0-40", "top": 4}
    response = client.get(url(model), params=params)
    assert response.status_code == 200, response.text
    expected = convscope.top_activations(
        model, "conv2D_3", "fashion-mnist:test:0-40", 4, channel=5, store=tiny_store
    )
    same(response.json(), expected.to_dict())
    assert response.json()["images"] == "fashion-mnist:test:0-40"
    other = client.get(url(model), params={**params, "channel": 6, "top": 2})
    assert other.status_code == 200 and other.json()["channel"] == 6
    alone = convscope.top_activations(
        model, "conv2D_3", "fashion-mnist:test:0-40", 2, channel=6, store=tiny_store
    )
    same(other.json(), alone.to_dict())
    picture = client.get(url(model, ".png"), params=params)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size[0] > 400


def test_the_probe_set_is_a_job_then_served_from_the_cache(
    client: TestClient, tiny_store, tiny_ids
) -> None:
    run = tiny_ids["residual"]
    params = {"layer": "hidden", "channel": 17}
    started = client.get(url(f"run:{run}@2"), params=params)
    assert started.status_code == 202 and list(started.json()) == ["job"]
    again = client.get(url(f"run:{run}@2"), params=params)  # the same work joins the job
    assert again.status_code in (200, 202)
    job = wait_done(client, started.json()["job"])
    assert job["progress"] == 1 and job["message"] == "ranked 50 of 50 images"
    expected = convscope.top_activations(f"run:{run}@2", "hidden", channel=17, store=tiny_store)
    same(job["result"], expected.to_dict())
    assert job["result"]["images"] == f"probe set of run {run}" and job["result"]["count"] == 50
    assert all(e["spec"].startswith("fashion-mnist:train:") for e in job["result"]["top"])
    cached = client.get(url(f"run:{run}@2"), params=params)
    assert cached.status_code == 200 and cached.json() == job["result"]
    # Every unit was kept: another one, and another k, need no job.
    other = client.get(url(f"run:{run}@2"), params={"layer": "hidden", "channel": 3, "top": 2})
    assert other.status_code == 200
    unit3 = convscope.top_activations(f"run:{run}@2", "hidden", k=2, channel=3, store=tiny_store)
    same(other.json(), unit3.to_dict())
    picture = client.get(url(f"run:{run}@2", ".png"), params=params)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(picture.content)) as image:
        assert image.size[0] > 900 and image.size[1] > 350
    # Another epoch is another model: its own job.
    assert client.get(url(f"run:{run}@1"), params=params).status_code == 202


def test_a_large_set_is_a_job(client: TestClient) -> None:
    params = {"layer": "conv2D_1", "channel": 2, "image": "fashion-mnist:test:0-200", "top": 3}
    started = client.get(url("sequential", ".png"), params=params)
    assert started.status_code == 202
    job = wait_done(client, started.json()["job"])
    expected = convscope.top_activations(
        "sequential", "conv2D_1", "fashion-mnist:test:0-200", 3, channel=2
    )
    same(job["result"], expected.to_dict())
    assert client.get(url("sequential"), params=params).json() == job["result"]
    picture = client.get(url("sequential", ".png"), params=params)
    assert picture.status_code == 200 and picture.content[:4] == b"\x89PNG"


def error_of(client: TestClient, path: str, params: dict[str, Any], status: int = 400) -> str:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    data = response.json()
    assert list(data) == ["error"] and "\n" not in data["error"]
    return data["error"]


@pytest.mark.parametrize("suffix", ["", ".png"])
def test_mistakes_are_4xx_with_one_line(client: TestClient, suffix: str) -> None:
    path = url("sequential", suffix)
    good = {"layer": "hidden", "channel": 0, "image": "fashion-mnist:test:0-10"}
    line = error_of(client, path, {**good, "layer": "hiden"})
    assert "no layer 'hiden'" in line and "did you mean hidden" in line
    line = error_of(client, path, {**good, "channel": 128})
    assert "channel 128 is out of range" in line and "128 units" in line and "0-127" in line
    line = error_of(client, path, {**good, "layer": "conv2D_1", "channel": -1})
    assert "32 channels" in line and "0-31" in line
    for image in ("../../etc/passwd", "/etc/passwd", "digits%2F1.png", "~/x.png"):
        assert "never names a file" in error_of(client, path, {**good, "image": image})
    assert "not an image SPEC" in error_of(client, path, {**good, "image": "nonsense"})
    for top in (0, 65):
        line = error_of(client, path, {**good, "top": top})
        assert line == f"top must be a whole number from 1 to 64, got {top}"
    assert "bad parameter channel" in error_of(client, path, {"layer": "hidden"})
    assert "bad parameter top" in error_of(client, path, {**good, "top": "many"})
    assert "unknown model" in error_of(client, url("lenet6", suffix), good, 404)
    assert "never names a file" in error_of(client, url("net.ckpt", suffix), good)


def test_both_routes_are_in_the_schema_with_the_contract_parameters(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for suffix in ("", ".png"):
        route = paths[f"/api/models/{{model}}/examples{suffix}"]["get"]
        names = {p["name"] for p in route["parameters"]}
        assert names >= {"model", "layer", "channel", "image", "top"}


def test_a_dataset_not_on_this_machine_is_a_409_not_a_download(
    client: TestClient, tiny_ids, monkeypatch: pytest.MonkeyPatch
) -> None:
    import convscope.data.browse

    monkeypatch.setattr(convscope.data.browse, "is_local", lambda _name, _split: False)
    params = {"layer": "hidden", "channel": 1, "image": "fashion-mnist:test:0-10"}
    line = error_of(client, url("sequential"), params, 409)
    assert "convscope data fetch fashion-mnist" in line
    del params["image"]  # the run's probe set lies in the training split
    line = error_of(client, url(f"run:{tiny_ids['sequential']}@1"), params, 409)
    assert "convscope data fetch fashion-mnist" in line
