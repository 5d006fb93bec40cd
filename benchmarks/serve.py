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
   the contract's GET routes (the app, runs, metrics, maps, probe, studies, models,
   layers, graph, kernels, features, explain, image, attribution; not the endless
   ``/api/events`` stream), within ``--time-limit`` seconds. Counts 5xx answers
   (must be 0), failed or dropped connections (must be 0) and the server process's
   resident memory before and after (``/proc/PID/status``).

Maps are computed once before timing (warm cache); with ``--store`` that is the only
thing written into the store. Without ``--store`` a study like the demo's is trained
into a temporary store first (a few minutes on 2 cores).

The last line of stdout is one JSON object.

    python benchmarks/serve.py [--store DIR] [--requests 1000] [--concurrency 50]
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

    def __init__(self, store: Path, log: Path) -> None:
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convscope", "serve", "--port", "0", "--store", str(store)],
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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="convscope-bench-serve-") as folder:
        root = Path(folder)
        store = args.store if args.store is not None else make_store(root)
        if not (store / "convscope.db").is_file():
            raise SystemExit(f"{store} is not a run store (no convscope.db)")
        server = Server(store, root / "server.log")
        try:
            figures = measure(server, store, args)
        finally:
            server.stop()
        log = (root / "server.log").read_text()
        figures["server_tracebacks"] = log.count("Traceback")
    report(figures)
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


if __name__ == "__main__":
    main()
