"""How fast the dashboard answers, and whether it holds under load, against ``/api/health``.

A real ``convscope serve --port 0 --store DIR`` process serves a store of a 4-run study
(``sequential,inception,residual,inception-residual``, ``hidden`` recorded on the probe
set); every request goes over loopback with httpx. Measured in one run:

1. p50/p95 latency of ``/api/runs``, ``/api/runs/{id}/metrics``, a cached
   ``/api/runs/{id}/embedding?layer=hidden&method=pca&epoch=N`` and the explorer's
   request behind the epoch slider (the same map, every epoch in one answer: the
   slider then moves without asking the server). Requests are sent one at a time,
   the routes interleaved and the runs taken in turn, so drifts in machine load hit
   all alike. ``/api/health`` (no store, no workers) is the baseline of every ratio.
   Goals: p95 < 50 ms for the three routes, < 100 ms for the slider's request.
2. load: ``--requests`` requests over ``--concurrency`` connections, a seeded mix of
   the contract's GET routes (the app, runs, metrics, batch losses, maps, probe, studies,
   models, layers, graph, kernels, features, explain, image, attribution; not the endless
   ``/api/events`` stream), within ``--time-limit`` seconds. Counts 5xx answers
   (must be 0), failed or dropped connections (must be 0) and the server process's
   resident memory before and after (``/proc/PID/status``).

Maps are computed once before timing (warm cache); with ``--store`` that is the only
thing written into the store. A cached map's answer is then also kept, as JSON text, in
the server's result cache; ``--cache-mb 0`` times it read from the store's files and
written as JSON each time instead (what the first request for it costs). Without ``--store`` a study like the demo's is trained
into a temporary store first (a few minutes on 2 cores).

3. the model explorer (``--part explorer``; a second ``convscope serve`` process, over a
   temporary store with one ``lenet5`` run trained for ``--switch-epochs`` epochs):

   - ``features/tiles`` warm (model loaded, the request not cached: a new image each
     time, the layers taken in turn) for ``lenet``, ``lenet5`` and ``sequential``, the
     JSON alone and the JSON with its PNG. Goal: p95 < 50 ms.
   - ``resnet50`` (torchvision's architecture, random init) at 224x224: the same for
     ``conv1``, ``layer1`` ... ``layer4``, against the bare forward pass of the same
     images (``module(batch)`` in eval mode under ``torch.no_grad``, under
     ``torch.inference_mode``, and with the weights and input ``channels_last`` as the
     server keeps them; the fastest of the three is the baseline), timed in a process of
     its own in turn with the requests (each step after a 50 ms pause, so neither process's
     OpenMP threads still spin while the other runs). Goal: p95 of each layer's JSON +
     PNG <= 1.3 x the bare pass's p95.
   - the epoch slider on the recorded run: for each epoch in turn (none asked before),
     ``kernels/tiles`` + its PNG + ``features/tiles`` + its PNG of ``run:ID@EPOCH``, one
     after the other (checkpoint load, forward, pictures). Goal: p95 < 300 ms.
   - a repeated ``features/tiles`` request and its PNG (from the result cache), and
     ``/api/health`` as the baseline of every ratio.

The last line of stdout is one JSON object.

    python benchmarks/serve.py [--store DIR] [--requests 1000] [--concurrency 50]
    python benchmarks/serve.py --part explorer     # the explorer's figures only (a minute)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np

MODELS = "sequential,inception,residual,inception-residual"
STUDY_ARGS = ("--epochs", "2", "--subset", "2000", "--batch-size", "100", "--probe-per-class", "25")
LAYER = "hidden"
METHOD = "pca"
IMAGE = "fashion-mnist:test:0"
URL_LINE = re.compile(r"convscope dashboard: http://[^:]+:(\d+)/")
GOALS_MS = {"runs": 50.0, "metrics": 50.0, "embedding_epoch": 50.0, "slider_all_epochs": 100.0}
ROUTE_NAMES = {
    "health": "/api/health (baseline)",
    "runs": "/api/runs",
    "metrics": "/api/runs/{id}/metrics",
    "embedding_epoch": "/api/runs/{id}/embedding ...&epoch=N (cached)",
    "slider_all_epochs": "epoch slider: /embedding, every epoch (cached)",
}


def make_store(root: Path) -> Path:
    """A study like the demo's, trained into ``root/runs`` (``convscope study``)."""
    store = root / "runs"
    command = [sys.executable, "-m", "convscope", "study", "--name", "demo", "--models", MODELS]
    command += [*STUDY_ARGS, "--store", str(store), "--out", str(root / "study")]
    print("training the study:", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return store


class Server:
    """A ``convscope serve --port 0 --store DIR`` process; its port once it answers."""

    def __init__(self, store: Path, log: Path, *options: str) -> None:
        self.log = log.open("w")
        command = [sys.executable, "-m", "convscope", "serve", "--port", "0"]
        self.process = subprocess.Popen(
            [*command, "--store", str(store), *options],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()))
        reader.start()
        reader.join(60)
        match = URL_LINE.search(line[0]) if line else None
        if match is None:
            self.stop()
            raise SystemExit(f"convscope serve printed no URL; see {log}")
        self.port = int(match[1])
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:  # the URL is printed just before uvicorn starts answering
            try:
                if httpx.get(f"{self.base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise SystemExit(f"convscope serve did not answer; see {log}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> dict[str, float]:
        """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MB."""
        fields = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)  # kB
        return fields

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def get_done(client: httpx.Client, path: str, limit: float = 600.0) -> httpx.Response:
    """``GET path``; a ``202 {"job"}`` is followed until the job is done, then asked again."""
    deadline = time.monotonic() + limit
    while True:
        response = client.get(path)
        if response.status_code != 202:
            response.raise_for_status()
            return response
        job = response.json()["job"]
        while True:
            status = client.get(f"/api/jobs/{job}").json()
            if status["status"] not in ("queued", "running"):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{path} was not computed within {limit:.0f} s")
            time.sleep(0.5)
        if status["status"] != "done":
            raise SystemExit(f"{path}: job {job} ended {status['status']}: {status}")


def conv_layer(client: httpx.Client, model: str) -> str:
    """The model's first convolution (for the kernel, feature and explain routes)."""
    layers = client.get(f"/api/models/{model}/layers").json()
    return next(layer["name"] for layer in layers if "Conv" in layer["type"])


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p95": round(float(np.percentile(ms, 95)), 2),
    }


def latencies(client: httpx.Client, routes: dict[str, list[str]], samples: int) -> dict:
    """``samples`` timings per route, one request at a time, the routes interleaved."""
    timings: dict[str, list[float]] = {name: [] for name in routes}
    for i in range(samples):
        for name, paths in routes.items():
            path = paths[i % len(paths)]
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}: {response.text[:200]}")
            timings[name].append(elapsed)
    return {name: percentiles(values) for name, values in timings.items()}


def load_mix(runs: list[dict], layers: dict[str, str], studies: list[str]) -> list[tuple]:
    """``(weight, kind, path)`` of the load's routes: mostly the page's reads."""
    mix: list[tuple] = [
        (4, "health", "/api/health"),
        (2, "page", "/"),
        (8, "runs", "/api/runs"),
        (4, "studies", "/api/studies"),
        (3, "models", "/api/models"),
    ]
    mix += [(2, "study", f"/api/studies/{quote(s, safe='')}?method={METHOD}") for s in studies]
    for run in runs:
        rid, epoch = run["id"], run["epochs_completed"]
        model = quote(f"run:{rid}", safe="")
        layer = layers[rid]
        image = f"image={quote(IMAGE, safe='')}"
        mix += [
            (4, "run", f"/api/runs/{rid}"),
            (6, "metrics", f"/api/runs/{rid}/metrics"),
            (3, "batch-loss", f"/api/runs/{rid}/batch-loss"),  # read with the metrics
            (4, "embedding", f"/api/runs/{rid}/embedding?layer={LAYER}&method={METHOD}"),
            (
                4,
                "embedding",
                f"/api/runs/{rid}/embedding?layer={LAYER}&method={METHOD}&epoch={epoch}",
            ),
            (3, "probe", f"/api/runs/{rid}/probe"),
            (2, "layers", f"/api/models/{model}/layers"),
            (2, "graph", f"/api/models/{model}/graph"),
            (2, "kernels", f"/api/models/{model}/kernels?layer={layer}"),
            (2, "features", f"/api/models/{model}/features?layer={layer}&{image}"),
            (1, "explain", f"/api/models/{model}/explain?layer={layer}&{image}&at=5,5"),
            (1, "image", f"/api/image.png?{image}&model={model}"),
            (1, "attribute", f"/api/models/{model}/attribute.png?{image}&method=saliency"),
        ]
    return mix


async def load(base: str, paths: list[tuple[str, str]], concurrency: int, limit: float) -> dict:
    """Send every ``(kind, path)`` over ``concurrency`` connections, within ``limit`` s."""
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in paths:
        queue.put_nowait(item)
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    by_kind: dict[str, list[float]] = {}
    errors: list[str] = []
    timings: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(120.0, connect=30.0)

    async def worker(client: httpx.AsyncClient) -> None:
        while True:
            try:
                kind, path = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            try:
                response = await client.get(path)
            except httpx.HTTPError as error:
                failures[type(error).__name__] += 1
                continue
            elapsed = time.perf_counter() - started
            statuses[response.status_code] += 1
            timings.append(elapsed)
            by_kind.setdefault(kind, []).append(elapsed)
            if response.status_code >= 400:  # every request of the mix is a valid one
                errors.append(f"{response.status_code} {path}: {response.text[:200]}")

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=limit)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    seconds = time.perf_counter() - started
    answered = sum(statuses.values())
    return {
        "sent": len(paths),
        "answered": answered,
        "not_sent_in_time": queue.qsize(),
        "seconds": round(seconds, 2),
        "requests_per_second": round(answered / seconds, 1),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "status_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "status_4xx": sum(v for k, v in statuses.items() if 400 <= k < 500),
        "status_202": statuses.get(202, 0),
        "failed_connections": sum(failures.values()) + len(pending),
        "failures": dict(failures),
        "latency_ms": percentiles(timings) if timings else None,
        "latency_ms_by_kind": {k: percentiles(v) for k, v in sorted(by_kind.items())},
        "errors": errors[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="a store with the 4-run study (else made)")
    parser.add_argument("--requests", type=int, default=1000, help="requests of the load (1000)")
    parser.add_argument("--concurrency", type=int, default=50, help="connections (50)")
    parser.add_argument("--samples", type=int, default=200, help="timings per route (200)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="of the load, s (300)")
    parser.add_argument("--seed", type=int, default=0, help="of the load's order (0)")
    parser.add_argument(
        "--cache-mb",
        type=int,
        default=None,
        help="the dashboard server's --cache-mb (0: no result cache, so every cached map "
        "is read from the store and written as JSON again; default: the server's)",
    )
    parser.add_argument(
        "--part",
        choices=("all", "dashboard", "explorer"),
        default="all",
        help="the run store's routes and the load (dashboard), the model explorer's "
        "routes (explorer), or both (all, the default)",
    )
    parser.add_argument(
        "--tile-samples", type=int, default=40, help="timings per explorer figure (40)"
    )
    parser.add_argument(
        "--switch-epochs",
        type=int,
        default=24,
        help="epochs of the lenet5 run whose epoch slider is timed (24: 25 checkpoints)",
    )
    args = parser.parse_args()

    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="convscope-bench-serve-") as folder:
        root = Path(folder)
        if args.part in ("all", "dashboard"):
            store = args.store if args.store is not None else make_store(root)
            if not (store / "convscope.db").is_file():
                raise SystemExit(f"{store} is not a run store (no convscope.db)")
            options = () if args.cache_mb is None else ("--cache-mb", str(args.cache_mb))
            server = Server(store, root / "server.log", *options)
            try:
                figures = measure(server, store, args)
            finally:
                server.stop()
            log = (root / "server.log").read_text()
            figures["server_tracebacks"] = log.count("Traceback")
            report(figures)
        if args.part in ("all", "explorer"):
            figures["explorer"] = measure_explorer(root, args)
            report_explorer(figures["explorer"])
    print(json.dumps(figures))


def measure(server: Server, store: Path, args: argparse.Namespace) -> dict:
    with httpx.Client(base_url=server.base, timeout=600) as client:
        runs = client.get("/api/runs").json()
        if not runs:
            raise SystemExit(f"no runs in {store}")
        studies = [s["name"] for s in client.get("/api/studies").json()]
        print(f"{len(runs)} runs, studies {studies}; server pid {server.pid}", flush=True)
        started = time.perf_counter()
        for run in runs:  # warm: every map computed (and cached in the store) once
            path = f"/api/runs/{run['id']}/embedding?layer={LAYER}&method={METHOD}"
            get_done(client, path)
            get_done(client, f"{path}&epoch={run['epochs_completed']}")
        for name in studies:
            get_done(client, f"/api/studies/{quote(name, safe='')}?method={METHOD}")
        layers = {r["id"]: conv_layer(client, quote(f"run:{r['id']}", safe="")) for r in runs}
        client.get("/api/models").raise_for_status()  # builds every zoo model once
        print(f"warmed the caches in {time.perf_counter() - started:.1f} s", flush=True)

        ids = [r["id"] for r in runs]
        embed = [f"/api/runs/{i}/embedding?layer={LAYER}&method={METHOD}" for i in ids]
        routes = {
            "health": ["/api/health"],
            "runs": ["/api/runs"],
            "metrics": [f"/api/runs/{i}/metrics" for i in ids],
            "embedding_epoch": [
                f"{p}&epoch={r['epochs_completed']}" for p, r in zip(embed, runs, strict=True)
            ],
            "slider_all_epochs": embed,
        }
        latency = latencies(client, routes, args.samples)

    mix = load_mix(runs, layers, studies)
    rng = random.Random(args.seed)
    weights = [w for w, _, _ in mix]
    paths = [(kind, path) for _, kind, path in rng.choices(mix, weights, k=args.requests)]
    rss_before = server.rss_mb()
    loaded = asyncio.run(load(server.base, paths, args.concurrency, args.time_limit))
    time.sleep(1.0)
    rss_after = server.rss_mb()

    base = latency["health"]
    return {
        "store": str(store),
        "runs": len(runs),
        "cache_mb": args.cache_mb,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "samples_per_route": args.samples,
        "latency_ms": latency,
        "ratio_p50_vs_health": {
            k: round(v["p50"] / base["p50"], 1) for k, v in latency.items() if k != "health"
        },
        "ratio_p95_vs_health": {
            k: round(v["p95"] / base["p95"], 1) for k, v in latency.items() if k != "health"
        },
        "goals_p95_ms": GOALS_MS,
        "goals_met": {k: latency[k]["p95"] < goal for k, goal in GOALS_MS.items()},
        "load": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "routes_in_mix": len(mix),
            **loaded,
        },
        "rss_mb_before": rss_before.get("VmRSS"),
        "rss_mb_after": rss_after.get("VmRSS"),
        "rss_peak_mb": rss_after.get("VmHWM"),
    }


def report(f: dict) -> None:
    print()
    print(f"{'route':<50} {'p50 ms':>8} {'p95 ms':>8} {'p50 x':>7} {'p95 x':>7}  goal (p95)")
    for key, name in ROUTE_NAMES.items():
        lat = f["latency_ms"][key]
        if key == "health":
            print(f"{name:<50} {lat['p50']:>8.2f} {lat['p95']:>8.2f} {'1.0':>7} {'1.0':>7}")
            continue
        goal = f"< {f['goals_p95_ms'][key]:.0f} ms: {'met' if f['goals_met'][key] else 'MISSED'}"
        r50, r95 = f["ratio_p50_vs_health"][key], f["ratio_p95_vs_health"][key]
        print(f"{name:<50} {lat['p50']:>8.2f} {lat['p95']:>8.2f} {r50:>7.1f} {r95:>7.1f}  {goal}")
    load = f["load"]
    print()
    print(
        f"load: {load['answered']}/{load['requests']} requests answered over "
        f"{load['concurrency']} connections in {load['seconds']} s "
        f"({load['requests_per_second']} req/s; p50 {load['latency_ms']['p50']} ms, "
        f"p95 {load['latency_ms']['p95']} ms)"
    )
    print(
        f"  5xx: {load['status_5xx']}   failed/dropped connections: {load['failed_connections']}"
        f"   4xx: {load['status_4xx']}   202: {load['status_202']}   statuses: "
        f"{load['status_counts']}"
    )
    print(
        f"  server RSS: {f['rss_mb_before']} MB before, {f['rss_mb_after']} MB after "
        f"(peak {f['rss_peak_mb']} MB); tracebacks in the server log: {f['server_tracebacks']}"
    )
    for line in load["errors"]:
        print(f"  error answer: {line}")
    print(f"  ({f['cpu_count']} cores, 1-min load average {f['load_average_1min']} at the end)")


# --------------------------------------------------------------------------- the explorer

TILE_MODELS = {  # MNIST-size zoo models: layers to show, the images to show them on
    "lenet": (("conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2"), "mnist"),
    "lenet5": (("conv2d_1", "max_pooling2d_1", "conv2d_2", "max_pooling2d_2"), "mnist"),
    "sequential": (("conv2D_1", "conv2D_2", "pool1", "conv2D_3", "pool2"), "fashion-mnist"),
}
RESNET_LAYERS = ("conv1", "layer1", "layer2", "layer3", "layer4")
RESNET_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "camera")
TILES_GOAL_MS = 50.0
RESNET_GOAL_RATIO = 1.3
SWITCH_GOAL_MS = 300.0
SWITCH_LAYER = "conv2d_1"


def make_lenet5_run(root: Path, epochs: int) -> tuple[Path, str]:
    """A ``lenet5`` run of ``epochs`` epochs on 1,000 MNIST images (a checkpoint each)."""
    store = root / "lenet5-runs"
    command = [sys.executable, "-m", "convscope", "train", "lenet5", "--data", "mnist",
               "--epochs", str(epochs), "--subset", "1000", "--store", str(store), "--json"]  # fmt: skip
    print("training:", " ".join(command[2:]), flush=True)
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return store, json.loads(done.stdout)["run_id"]


def timed_get(client: httpx.Client, path: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
    return elapsed, response


def tiles_pair(client: httpx.Client, path: str) -> tuple[float, float]:
    """Seconds of a tiles JSON request, and of it with its PNG (the URL it names)."""
    json_s, response = timed_get(client, path)
    png_s, _ = timed_get(client, "/" + response.json()["png"])
    return json_s, json_s + png_s


def features_path(model: str, layer: str, image: str) -> str:
    query = f"layer={quote(layer)}&image={quote(image, safe='')}"
    return f"/api/models/{quote(model, safe='')}/features/tiles?{query}"


def kernels_path(model: str, layer: str) -> str:
    return f"/api/models/{quote(model, safe='')}/kernels/tiles?layer={quote(layer)}"


BARE_MODES = ("no_grad", "inference_mode", "channels_last")
SETTLE_S = 0.05
"""Pause before each timed resnet50 step: the two processes' OpenMP threads spin a while
after their work, which slows whichever runs next on 2 cores."""

BARE_SCRIPT = """
import copy, json, sys, time
import torch
import convscope
from convscope.probe.features import prepare_input

model = convscope.load_model("resnet50")  # random init, seed 0: as the server builds it
module = model.module.eval()
last = copy.deepcopy(module).to(memory_format=torch.channels_last)
batches = {image: prepare_input(model, image).batch for image in json.loads(sys.argv[1])}
lasts = {image: b.contiguous(memory_format=torch.channels_last) for image, b in batches.items()}
print("ready", flush=True)
for line in sys.stdin:
    image, mode = line.split()
    net, batch = (last, lasts[image]) if mode == "channels_last" else (module, batches[image])
    context = torch.inference_mode() if mode == "inference_mode" else torch.no_grad()
    started = time.perf_counter()
    with context:
        net(batch)
    print(time.perf_counter() - started, flush=True)
"""


class BareForward:
    """The bare forward pass of ``resnet50`` in a process of its own (as the server is
    one), on the images prepared as the server prepares them: :meth:`run` times one
    pass in one of :data:`BARE_MODES` (``channels_last``: weights and input in that
    layout, as the server keeps large models; under no_grad)."""

    def __init__(self, images: list[str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", BARE_SCRIPT, json.dumps(images)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the bare forward process did not start")

    def run(self, image: str, mode: str) -> float:
        self.process.stdin.write(f"{image} {mode}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def measure_explorer(root: Path, args: argparse.Namespace) -> dict:
    """The explorer's figures (see the module docstring, part 3)."""
    from convscope.data.datasets import load_dataset

    for dataset in ("mnist", "fashion-mnist"):  # a request never downloads a dataset
        load_dataset(dataset, "test")
    started = time.perf_counter()
    store, run_id = make_lenet5_run(root, args.switch_epochs)
    trained_s = time.perf_counter() - started
    samples = args.tile_samples
    resnet_images = [f"sample:{name}" for name in RESNET_IMAGES]
    resnet_images += [f"fashion-mnist:test:{i}" for i in range(samples - len(resnet_images))]
    bare = BareForward(resnet_images)
    server = Server(store, root / "explorer.log")
    try:
        with httpx.Client(base_url=server.base, timeout=600) as client:
            rss_start = server.rss_mb()
            figures = explorer_latencies(
                client, run_id, args.switch_epochs, samples, resnet_images, bare
            )
            figures["rss_mb_start"] = rss_start.get("VmRSS")
            figures["rss_mb_end"] = server.rss_mb().get("VmRSS")
            figures["rss_peak_mb"] = server.rss_mb().get("VmHWM")
    finally:
        server.stop()
        bare.stop()
    figures["server_tracebacks"] = (root / "explorer.log").read_text().count("Traceback")
    figures["lenet5_run"] = {"epochs": args.switch_epochs, "trained_in_s": round(trained_s, 1)}
    figures["cpu_count"] = os.cpu_count()
    figures["load_average_1min"] = round(os.getloadavg()[0], 2)
    return figures


def explorer_latencies(
    client: httpx.Client,
    run_id: str,
    epochs: int,
    samples: int,
    resnet_images: list[str],
    bare: BareForward,
) -> dict:
    health: list[float] = []

    def baseline() -> None:
        health.append(timed_get(client, "/api/health")[0])

    # warm: every model loaded, every layer's number of calls learnt (one request each)
    for model, (layers, dataset) in TILE_MODELS.items():
        for layer in layers:
            tiles_pair(client, features_path(model, layer, f"{dataset}:test:9999"))
    for layer in RESNET_LAYERS:
        tiles_pair(client, features_path("resnet50", layer, "fashion-mnist:test:9999"))
    for image in resnet_images[:2]:
        for mode in BARE_MODES:
            bare.run(image, mode)

    tiles: dict[str, dict[str, list[float]]] = {m: {"json": [], "pair": []} for m in TILE_MODELS}
    for i in range(samples):  # a new image each time: nothing of it is cached
        for model, (layers, dataset) in TILE_MODELS.items():
            layer = layers[i % len(layers)]
            json_s, pair_s = tiles_pair(client, features_path(model, layer, f"{dataset}:test:{i}"))
            tiles[model]["json"].append(json_s)
            tiles[model]["pair"].append(pair_s)
            baseline()

    resnet: dict[str, dict[str, list[float]]] = {
        layer: {"json": [], "pair": []} for layer in RESNET_LAYERS
    }
    forward: dict[str, list[float]] = {mode: [] for mode in BARE_MODES}
    for i, image in enumerate(resnet_images):  # the bare pass and the requests in turn,
        steps = [*forward, *RESNET_LAYERS]  # in one order, then the other
        for step in steps if i % 2 == 0 else steps[::-1]:
            time.sleep(SETTLE_S)  # the other process's OpenMP threads stop spinning
            if step in forward:
                forward[step].append(bare.run(image, step))
                continue
            json_s, pair_s = tiles_pair(client, features_path("resnet50", step, image))
            resnet[step]["json"].append(json_s)
            resnet[step]["pair"].append(pair_s)
        baseline()

    switch: list[float] = []
    for epoch in range(epochs + 1):  # epochs 0 (before the first update) .. epochs
        ref = f"run:{run_id}@{epoch}"
        started = time.perf_counter()
        tiles_pair(client, kernels_path(ref, SWITCH_LAYER))
        tiles_pair(client, features_path(ref, SWITCH_LAYER, "mnist:test:0"))
        switch.append(time.perf_counter() - started)
        baseline()

    repeat: dict[str, list[float]] = {"json": [], "pair": []}
    path = features_path("lenet5", "conv2d_1", "mnist:test:0")
    tiles_pair(client, path)
    for _ in range(samples):
        json_s, pair_s = tiles_pair(client, path)
        repeat["json"].append(json_s)
        repeat["pair"].append(pair_s)
        baseline()
    return summarize_explorer(health, tiles, resnet, forward, switch, repeat)


def summarize_explorer(health, tiles, resnet, forward, switch, repeat) -> dict:
    base = percentiles(health)
    tile_figures = {m: {k: percentiles(v) for k, v in d.items()} for m, d in tiles.items()}
    forward_figures = {mode: percentiles(v) for mode, v in forward.items()}
    bare_p95 = min(f["p95"] for f in forward_figures.values())
    bare_p50 = min(f["p50"] for f in forward_figures.values())
    resnet_figures = {
        layer: {k: percentiles(v) for k, v in d.items()} for layer, d in resnet.items()
    }
    resnet_ratio = {
        layer: round(f["pair"]["p95"] / bare_p95, 3) for layer, f in resnet_figures.items()
    }
    resnet_ratio_p50 = {
        layer: round(f["pair"]["p50"] / bare_p50, 3) for layer, f in resnet_figures.items()
    }
    switch_figures = percentiles(switch)
    repeat_figures = {k: percentiles(v) for k, v in repeat.items()}
    goals = {
        "features_tiles_p95_ms": {m: TILES_GOAL_MS for m in tiles},
        "resnet50_ratio_p95_vs_bare_forward": RESNET_GOAL_RATIO,
        "epoch_switch_p95_ms": SWITCH_GOAL_MS,
    }
    met = {
        "features_tiles": {m: f["pair"]["p95"] < TILES_GOAL_MS for m, f in tile_figures.items()},
        "resnet50": max(resnet_ratio.values()) <= RESNET_GOAL_RATIO,
        "epoch_switch": switch_figures["p95"] < SWITCH_GOAL_MS,
    }
    return {
        "health_ms": base,
        "features_tiles_ms": tile_figures,
        "features_tiles_ratio_p95_vs_health": {
            m: round(f["pair"]["p95"] / base["p95"], 1) for m, f in tile_figures.items()
        },
        "resnet50_bare_forward_ms": forward_figures,
        "resnet50_features_tiles_ms": resnet_figures,
        "resnet50_ratio_p95_vs_bare_forward": resnet_ratio,
        "resnet50_ratio_p50_vs_bare_forward": resnet_ratio_p50,
        "epoch_switch_ms": switch_figures,
        "epoch_switches": len(switch),
        "epoch_switch_ratio_p95_vs_health": round(switch_figures["p95"] / base["p95"], 1),
        "cached_repeat_ms": repeat_figures,
        "cached_repeat_ratio_p95_vs_health": round(repeat_figures["pair"]["p95"] / base["p95"], 1),
        "goals": goals,
        "goals_met": met,
    }


def report_explorer(f: dict) -> None:
    def line(name: str, lat: dict, extra: str = "") -> None:
        print(f"{name:<58} {lat['p50']:>8.2f} {lat['p95']:>8.2f}  {extra}")

    print()
    print(f"{'model explorer (one request at a time)':<58} {'p50 ms':>8} {'p95 ms':>8}  goal")
    line("/api/health (baseline)", f["health_ms"])
    for model, lat in f["features_tiles_ms"].items():
        ok = "met" if f["goals_met"]["features_tiles"][model] else "MISSED"
        line(f"{model}: features/tiles (JSON)", lat["json"])
        line(f"{model}: features/tiles + tiles.png", lat["pair"], f"< {TILES_GOAL_MS:.0f} ms: {ok}")
    for mode, lat in f["resnet50_bare_forward_ms"].items():
        line(f"resnet50 224x224: bare forward ({mode})", lat)
    for layer, lat in f["resnet50_features_tiles_ms"].items():
        ratio = f["resnet50_ratio_p95_vs_bare_forward"][layer]
        r50 = f["resnet50_ratio_p50_vs_bare_forward"][layer]
        ok = "met" if ratio <= RESNET_GOAL_RATIO else "MISSED"
        line(f"resnet50 {layer}: features/tiles + tiles.png", lat["pair"],
             f"p95 {ratio:.2f} x bare (<= {RESNET_GOAL_RATIO}): {ok}; p50 {r50:.2f} x")  # fmt: skip
    ok = "met" if f["goals_met"]["epoch_switch"] else "MISSED"
    line(f"epoch switch ({f['epoch_switches']} epochs): kernels + features tiles + PNGs",
         f["epoch_switch_ms"], f"< {SWITCH_GOAL_MS:.0f} ms: {ok}")  # fmt: skip
    line("cached repeat: features/tiles + tiles.png", f["cached_repeat_ms"]["pair"],
         f"{f['cached_repeat_ratio_p95_vs_health']} x health")  # fmt: skip
    print(
        f"  server RSS: {f['rss_mb_start']} MB at the start, {f['rss_mb_end']} MB at the end "
        f"(peak {f['rss_peak_mb']} MB); tracebacks in the server log: {f['server_tracebacks']}"
    )
    print(f"  ({f['cpu_count']} cores, 1-min load average {f['load_average_1min']} at the end)")


if __name__ == "__main__":
    main()
