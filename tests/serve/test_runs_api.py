"""The runs and studies routes answer what the library (and the CLI) say for the same store."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from convscope.embed.projection import ProjectionParams
from convscope.serve.routes_runs import array_json, json_ready, json_text
from convscope.serve.state import ServeConfig
from convscope.store import open_store
from tests.serve.conftest import get_json, make_client
from tests.stores import copy_store


def wait_for_job(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll ``/api/jobs/ID`` until the job ends; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(f"/api/jobs/{job_id}").json()
        if answer["status"] not in ("queued", "running"):
            return answer
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


@pytest.fixture
def fresh_store(tiny_store: Path, tmp_path: Path) -> Path:
    """A copy of the tiny store with no maps cached yet (tests that cache maps use it)."""
    copy = tmp_path / "runs"
    copy_store(tiny_store, copy)
    return copy


@pytest.fixture
def fresh_client(fresh_store: Path) -> Iterator[TestClient]:
    with make_client(ServeConfig(store=fresh_store)) as client:
        yield client


# --- runs ------------------------------------------------------------------------------------


def test_runs_list(client: TestClient, tiny_store: Path) -> None:
    answer = client.get("/api/runs")
    assert answer.status_code == 200
    items = answer.json()
    with open_store(tiny_store, create=False) as store:
        records = store.runs()
        expected_acc = [float(store.metrics(r.id)["test_acc"][-1]) for r in records]
    assert [item["id"] for item in items] == [r.id for r in records]
    for item, record, test_acc in zip(items, records, expected_acc, strict=True):
        assert set(item) == {
            "id", "name", "study", "model", "dataset", "status", "epochs_completed",
            "test_acc", "epochs", "created",
        }  # fmt: skip
        assert item["name"] == record.name and item["study"] == "tiny"
        assert item["status"] == "finished" and item["epochs_completed"] == 2
        assert item["epochs"] == 2 and item["created"] == record.created
        assert item["test_acc"] == pytest.approx(test_acc)


def test_runs_list_without_a_store_is_empty(tmp_path: Path) -> None:
    with make_client(ServeConfig(store=tmp_path / "none")) as client:
        assert client.get("/api/runs").json() == []
        assert client.get("/api/studies").json() == []


def test_store_that_is_a_file_is_400(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("not a store")
    with make_client(ServeConfig(store=path)) as client:
        answer = client.get("/api/runs")
    assert answer.status_code == 400
    assert "is a file, not a run store directory" in answer.json()["error"]


def test_run_show_is_the_cli_json(
    client: TestClient, tiny_store: Path, tiny_ids: dict[str, str], capsys
) -> None:
    from convscope.cli.app import main

    run_id = tiny_ids["residual"]
    assert main(["runs", "show", run_id, "--json", "--store", str(tiny_store)]) == 0
    printed = json.loads(capsys.readouterr().out)
    answer = client.get(f"/api/runs/{run_id}")
    assert answer.status_code == 200
    assert answer.json() == printed
    assert client.get(f"/api/runs/{run_id[:5]}").json()["id"] == run_id  # an id prefix


def test_unknown_run_is_404_with_the_cli_line(
    client: TestClient, tiny_store: Path, tiny_ids: dict[str, str], capsys
) -> None:
    from convscope.cli.app import main

    wrong = tiny_ids["sequential"][:-1] + "x"
    assert main(["runs", "show", wrong, "--store", str(tiny_store)]) == 2
    line = capsys.readouterr().err.strip().removeprefix("convscope: error: ")
    for route in ("", "/metrics", "/batch-loss", "/embedding", "/probe", "/probe/sprite.png"):
        answer = client.get(f"/api/runs/{wrong}{route}")
        assert answer.status_code == 404, route
        assert answer.json() == {"error": line}


def test_metrics_are_the_store_metrics(
    client: TestClient, tiny_store: Path, tiny_ids: dict[str, str]
) -> None:
    run_id = tiny_ids["sequential"]
    answer = client.get(f"/api/runs/{run_id}/metrics").json()
    with open_store(tiny_store, create=False) as store:
        expected = store.metrics(run_id)
    assert list(answer) == list(expected)
    assert answer["epoch"] == [0, 1, 2]
    assert answer["train_loss"][0] is None  # NaN: no training before epoch 1
    for name, values in expected.items():
        assert answer[name] == json_ready(values.tolist()), name


@pytest.fixture(scope="module")
def batch_loss_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with one tiny 2-epoch run trained with ``record_batch_loss`` (a second or two)."""
    from convscope.train.loop import TrainConfig
    from convscope.train.run import RunSettings, train_run

    root = tmp_path_factory.mktemp("batch-loss") / "runs"
    settings = RunSettings(
        model="sequential",
        data="fashion-mnist",
        config=TrainConfig(epochs=2, batch_size=64, seed=0),
        probe_per_class=1,
        subset=300,
        record_kernels=False,
        record_batch_loss=True,
    )
    with open_store(root) as store:
        return root, train_run(settings, store=store).run_id


def test_batch_loss_is_every_recorded_batch_on_the_epoch_axis(
    batch_loss_store: tuple[Path, str],
) -> None:
    root, run_id = batch_loss_store
    with open_store(root, create=False) as store:
        found = sorted(store.artifacts(run_id, kind="batch_loss"), key=lambda a: a.epoch)
        per_epoch = {a.epoch: store.load_array(a) for a in found}
    assert sorted(per_epoch) == [1, 2] and len({len(v) for v in per_epoch.values()}) == 1
    with make_client(ServeConfig(store=root)) as client:
        body = get_json(client, f"/api/runs/{run_id}/batch-loss")
    assert set(body) == {"run", "recorded", "epochs", "batches", "epoch", "loss"}
    assert body["run"] == run_id and body["recorded"] is True and body["epochs"] == [1, 2]
    count = len(per_epoch[1])  # 240 training images of the 300 in batches of 64: 4
    assert count == 4 and body["batches"] == [count, count]
    expected = np.concatenate([per_epoch[1], per_epoch[2]]).astype(np.float64)
    np.testing.assert_allclose(body["loss"], expected, atol=1e-6)
    positions = [e - 1 + (i + 1) / count for e in (1, 2) for i in range(count)]
    np.testing.assert_allclose(body["epoch"], positions, atol=1e-5)
    assert body["epoch"][count - 1] == 1.0 and body["epoch"][-1] == 2.0
    assert body["epoch"] == sorted(body["epoch"])


def test_batch_loss_of_a_run_that_did_not_record_it(
    client: TestClient, tiny_ids: dict[str, str]
) -> None:
    body = get_json(client, f"/api/runs/{tiny_ids['residual']}/batch-loss")
    assert body == {
        "run": tiny_ids["residual"],
        "recorded": False,
        "epochs": [],
        "batches": [],
        "epoch": [],
        "loss": [],
    }


def test_batch_loss_not_finite_is_null(batch_loss_store: tuple[Path, str], tmp_path: Path) -> None:
    """A diverged batch (NaN or inf loss) is a null the chart leaves a gap for, not 'NaN'."""
    root, run_id = batch_loss_store
    copy = tmp_path / "runs"
    copy_store(root, copy)
    with open_store(copy, create=False) as store:
        run = store.run(run_id)
        diverged = store.create_run(
            name="diverged", model=run.model, dataset=run.dataset, config={}
        ).id
        store.commit_epoch(diverged, 0, metrics={})
        store.commit_epoch(
            diverged,
            1,
            metrics={"train_loss": 2.3},
            arrays={("batch_loss", "train"): np.array([2.3, np.nan, np.inf], np.float32)},
        )
    with make_client(ServeConfig(store=copy)) as client:
        body = get_json(client, f"/api/runs/{diverged}/batch-loss")
    assert body["recorded"] is True and body["batches"] == [3]
    assert body["loss"] == [pytest.approx(2.3), None, None]


# --- studies ---------------------------------------------------------------------------------


def test_studies(client: TestClient, tiny_ids: dict[str, str]) -> None:
    assert client.get("/api/studies").json() == [
        {
            "name": "tiny",
            "runs": [tiny_ids["sequential"], tiny_ids["residual"]],
            "models": ["sequential", "residual"],
        }
    ]


def test_study_ranking_is_report_json(fresh_client: TestClient, fresh_store: Path) -> None:
    from convscope.report.collect import collect_ranking

    first = fresh_client.get("/api/studies/tiny", params={"method": "pca"})
    assert first.status_code == 202
    job = wait_for_job(fresh_client, first.json()["job"])
    assert job["status"] == "done", job
    with open_store(fresh_store, create=False) as store:
        expected = collect_ranking(store, ["tiny"], params=ProjectionParams("pca")).to_dict()
    assert job["result"] == json_ready(expected)
    assert set(job["result"]) == {"verdict", "ranking"}
    again = fresh_client.get("/api/studies/tiny", params={"method": "pca"})
    assert again.status_code == 200 and again.json() == job["result"]


def test_unknown_study_and_method(client: TestClient) -> None:
    answer = client.get("/api/studies/tinny")
    assert answer.status_code == 404 and "tiny" in answer.json()["error"]
    answer = client.get("/api/studies/tiny", params={"method": "mds"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "unknown embedding method 'mds'; use umap, pca, tsne"}


# --- embeddings ------------------------------------------------------------------------------


def test_embedding_job_then_cache(
    fresh_client: TestClient, fresh_store: Path, tiny_ids: dict[str, str]
) -> None:
    from convscope.embed.runs import embed_run

    run_id = tiny_ids["sequential"]
    url = f"/api/runs/{run_id}/embedding"
    first = fresh_client.get(url, params={"method": "pca"})
    assert first.status_code == 202
    job = wait_for_job(fresh_client, first.json()["job"])
    assert job["status"] == "done", job
    with open_store(fresh_store, create=False) as store:
        expected = embed_run(store, run_id, "hidden", ProjectionParams("pca"))
    body = job["result"]
    assert body["run"] == run_id and body["layer"] == "hidden" and body["method"] == "pca"
    assert body["epoch"] is None and body["epochs"] == [0, 1, 2]
    assert body["labels"] == expected.labels.tolist()
    assert len(body["classes"]) == 10 and body["classes"][0] == "T-shirt/top"
    for epoch in expected.epochs:
        np.testing.assert_allclose(body["points"][str(epoch)], expected.layouts[epoch], atol=1e-4)
        assert body["scores"][str(epoch)] == expected.scores[epoch].to_dict()
    started = time.monotonic()
    cached = fresh_client.get(url, params={"method": "pca", "layer": "hidden", "epoch": 1})
    assert cached.status_code == 200 and time.monotonic() - started < 2
    one = cached.json()
    assert one["epoch"] == 1 and one["epochs"] == [0, 1, 2]
    np.testing.assert_allclose(one["points"], expected.layouts[1], atol=1e-4)
    assert one["scores"] == expected.scores[1].to_dict()
    assert set(one) == {"run", "layer", "method", "epoch", "epochs", "points", "labels"} | {
        "classes",
        "scores",
    }
    everything = fresh_client.get(url, params={"method": "pca"})
    assert everything.status_code == 200 and everything.json() == body
    # Asked again (the explorer's slider): the same bytes from the result cache, which
    # keys them by the cached maps' files, so a map computed anew is another entry.
    cache = fresh_client.app.state.convscope.cache
    hits = cache.hits
    again = fresh_client.get(url, params={"method": "pca"})
    assert again.content == everything.content and cache.hits == hits + 1
    assert again.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "values",
    [
        np.array([[0.5, -0.0], [1e-7, 1e20], [-3.25, 7.0]]),
        np.array([[np.nan, 1.5], [np.inf, -np.inf]], dtype=np.float32),
        np.arange(24, dtype=np.int64).reshape(2, 3, 4),
        np.array([True, False]),
        np.zeros((0, 2)),
        np.float64(np.nan),
        np.array(3, dtype=np.uint8),
    ],
)
def test_json_text_writes_arrays_as_json_ready_does(values: np.ndarray) -> None:
    plain = json_ready(np.asarray(values).tolist())
    expected = json.dumps(plain, separators=(",", ":"))
    assert array_json(values) == expected
    assert json.loads(json_text({"a": values, "b": [1, values]})) == {"a": plain, "b": [1, plain]}


def test_many_requests_share_one_job(fresh_client: TestClient, tiny_ids: dict[str, str]) -> None:
    url = f"/api/runs/{tiny_ids['residual']}/embedding"
    answers = [fresh_client.get(url, params={"method": "pca"}) for _ in range(3)]
    jobs = {a.json().get("job") for a in answers if a.status_code == 202}
    assert len(jobs) <= 1
    for job_id in jobs:
        assert wait_for_job(fresh_client, job_id)["status"] == "done"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"method": "mds"}, "unknown embedding method 'mds'"),
        ({"method": "pca", "layer": "hiden"}, "did you mean hidden?"),
        ({"method": "pca", "epoch": 7}, "no recorded epoch 7"),
        ({"method": "pca", "epoch": "last"}, "epoch"),
    ],
)
def test_embedding_mistakes_are_400(
    client: TestClient, tiny_ids: dict[str, str], params: dict[str, Any], words: str
) -> None:
    answer = client.get(f"/api/runs/{tiny_ids['sequential']}/embedding", params=params)
    assert answer.status_code == 400
    assert words in answer.json()["error"]


def test_server_answers_while_a_map_is_computed(
    fresh_client: TestClient, tiny_ids: dict[str, str], monkeypatch
) -> None:
    from convscope.embed import runs as embed_runs

    release = threading.Event()
    real_fit = embed_runs.fit_layout

    def slow_fit(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(embed_runs, "fit_layout", slow_fit)
    url = f"/api/runs/{tiny_ids['sequential']}/embedding"
    job_id = fresh_client.get(url, params={"method": "pca"}).json()["job"]
    try:
        time.sleep(0.1)
        assert fresh_client.get(f"/api/jobs/{job_id}").json()["status"] == "running"
        started = time.monotonic()
        assert fresh_client.get("/api/health").status_code == 200
        assert len(fresh_client.get("/api/runs").json()) == 2
        assert time.monotonic() - started < 1.5
    finally:
        release.set()
    assert wait_for_job(fresh_client, job_id)["status"] == "done"


def test_health_answers_at_once_while_every_worker_is_busy(client: TestClient) -> None:
    state = client.app.state.convscope
    release = threading.Event()
    busy = [state.executor.submit(release.wait, 10) for _ in range(state.config.workers)]
    try:
        client.get("/api/health")  # warm
        started = time.perf_counter()
        answer = client.get("/api/health")
        took = time.perf_counter() - started
        assert answer.status_code == 200 and took < 0.05, took
        assert all(not future.done() for future in busy)
    finally:
        release.set()


def test_runs_answer_while_every_job_thread_computes(
    client: TestClient, tiny_ids: dict[str, str]
) -> None:
    """A page asking for four maps at once must not hold up the run list and the metrics."""
    state = client.app.state.convscope
    release = threading.Event()
    jobs = [
        state.jobs.submit(f"slow-{i}", lambda job: release.wait(10))
        for i in range(state.config.workers + 1)
    ]
    try:
        started = time.perf_counter()
        runs = client.get("/api/runs")
        metrics = client.get(f"/api/runs/{tiny_ids['sequential']}/metrics")
        took = time.perf_counter() - started
        assert runs.status_code == metrics.status_code == 200
        assert took < 5, took  # not the 10 s the jobs hold their threads
        assert all(job.status in ("queued", "running") for job in jobs)
    finally:
        release.set()


# --- probe ----------------------------------------------------------------------------------------


def test_probe_predictions(client: TestClient, tiny_store: Path, tiny_ids: dict[str, str]) -> None:
    run_id = tiny_ids["sequential"]
    body = client.get(f"/api/runs/{run_id}/probe").json()
    with open_store(tiny_store, create=False) as store:
        labels = store.run_array(run_id, "probe", "labels")
        indices = store.run_array(run_id, "probe", "indices")
        found = store.artifacts(run_id, kind="predictions", name="probe")
        probabilities = {a.epoch: store.load_array(a) for a in found}
    assert body["run"] == run_id and body["epochs"] == [0, 1, 2]
    assert body["labels"] == labels.tolist() and body["indices"] == indices.tolist()
    assert body["classes"][9] == "Ankle boot"
    for epoch, values in probabilities.items():
        assert body["predictions"][str(epoch)] == values.argmax(axis=1).tolist()
        np.testing.assert_allclose(body["confidence"][str(epoch)], values.max(axis=1), atol=1e-4)
    assert body["sprite"] == {
        "url": f"api/runs/{run_id}/probe/sprite.png",
        "size": 28,
        "columns": 40,
    }


def test_probe_without_recorded_predictions(fresh_store: Path, tiny_ids: dict[str, str]) -> None:
    run_id = tiny_ids["residual"]
    with open_store(fresh_store, create=False) as store:  # as an older run: no predictions
        for artifact in store.artifacts(run_id, kind="predictions"):
            store._conn.execute("DELETE FROM artifacts WHERE id = ?", (artifact.id,))
        store._conn.commit()
    with make_client(ServeConfig(store=fresh_store)) as client:
        body = client.get(f"/api/runs/{run_id}/probe").json()
    assert body["predictions"] == {} and body["confidence"] == {}
    assert body["epochs"] == [0, 1, 2] and len(body["labels"]) == 50


def test_probe_sprite(client: TestClient, tiny_store: Path, tiny_ids: dict[str, str]) -> None:
    from convscope.train.run import probe_images

    run_id = tiny_ids["sequential"]
    answer = client.get(f"/api/runs/{run_id}/probe/sprite.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(answer.content)))
    with open_store(tiny_store, create=False) as store:
        images = probe_images(store, store.run(run_id))
    assert images is not None and grid.shape == (2 * 28, 40 * 28)
    for i in (0, 39, 40, 49):
        row, column = divmod(i, 40)
        tile = grid[row * 28 : (row + 1) * 28, column * 28 : (column + 1) * 28]
        np.testing.assert_array_equal(tile, images[i])
    assert not grid[28:, 10 * 28 :].any()  # the unused tiles of the last row stay black


def test_probe_sprite_that_cannot_be_rebuilt_is_404(
    client: TestClient, tiny_ids: dict[str, str], monkeypatch
) -> None:
    from convscope.train import run as train_run

    monkeypatch.setattr(train_run, "probe_images", lambda store, record: None)
    answer = client.get(f"/api/runs/{tiny_ids['sequential']}/probe/sprite.png")
    assert answer.status_code == 404
    assert "cannot be rebuilt" in answer.json()["error"]
