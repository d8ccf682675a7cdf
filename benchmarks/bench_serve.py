"""``pepler serve`` under load, against offline decoding of the same pairs; loopback only, bounded request counts.

    python benchmarks/bench_serve.py [--run RUN] [--pairs N] [--concurrency 1,8,32] [--repeats R]
                                     [--burst-queue Q] [--batch-wait-ms MS] [--pairs-per-request K]
                                     [--no-burst] [--out FILE]

RUN defaults to split 1's PEPLER on smollm2-135m of the bundled Table 5 (benchmarks/table5_bundled.sh makes it).
The pairs are the first N test pairs of the run's own dataset and split.

- offline: the pairs explained in one call of ``Explainer.explain`` with ``--batch-size 256``: what
  ``pepler generate --pairs`` does once the run is loaded (loading is not timed on either side), in this
  process, while the server idles;
- server: ``pepler serve RUN`` in a subprocess (``--batch-wait-ms``, 5 by default), warmed with one request; at each
  concurrency c, c clients (threads, one HTTP connection each) send the N pairs as N requests of one pair, each
  client its next pair as soon as its last is answered (``--pairs-per-request K``: requests of K pairs, as a page
  of K recommendations would send). Reported per level: pairs per second (the median of
  the repeats), latency p50 and p99 over every request of every repeat, the decoding calls the batcher made.
  Offline and the levels alternate within each repeat, so both see the same machine.
- burst: a second server with ``--queue-size Q`` gets 4·Q requests at once (one pair each, one connection
  each); every one must end with 200 or 503 (Retry-After) within the timeout, none lost, none hanging.

Greedy texts of the server are checked equal to offline's. The goal (issue 21): server throughput at
concurrency 32 ≥ 0.8× offline. Writes results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import benchlib

DEFAULT_RUN = ROOT / "benchmarks/.work/table5/same-pairs/runs/split=1,config=pepler-smollm2"
PEPLER = ROOT / ".venv" / "bin" / "pepler"
STARTUP_SECONDS = 300
REQUEST_TIMEOUT = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, default=DEFAULT_RUN)
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burst-queue", type=int, default=8)
    parser.add_argument("--batch-wait-ms", default="5", help="the server's --batch-wait-ms")
    parser.add_argument("--pairs-per-request", type=int, default=1, help="e.g. a page of recommendations")
    parser.add_argument("--no-burst", action="store_true", help="leave out the burst")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/serve.json")
    args = parser.parse_args()
    if not (args.run / "manifest.yaml").is_file():
        sys.exit(f"{args.run}: no run there (make it with: bash benchmarks/table5_bundled.sh, or pass --run)")
    levels = [int(c) for c in args.concurrency.split(",")]

    explainer, pairs = load_offline(args.run, args.pairs)
    results: dict[str, Any] = {
        "benchmark": "serve",
        "command": " ".join(["python", *sys.argv]),
        "machine": benchlib.machine_info(),
        "run": shown(args.run),
        "pairs": len(pairs),
        "levels": levels,
        "repeats": args.repeats,
        "goal": "server pairs/s at concurrency 32 >= 0.8 x offline",
        "batch_wait_ms": float(args.batch_wait_ms),
        "pairs_per_request": args.pairs_per_request,
    }
    offline_seconds: list[float] = []
    level_seconds: dict[int, list[float]] = {c: [] for c in levels}
    latencies: dict[int, list[float]] = {c: [] for c in levels}
    calls: dict[int, list[int]] = {c: [] for c in levels}
    server = Server(args.run, "--batch-wait-ms", args.batch_wait_ms)
    try:
        server.wait_ready()
        ask(server.url, pairs[0])  # warm: the first call pays for lazy initialisation
        expected = None
        for _ in range(args.repeats):
            started = time.perf_counter()
            expected = offline(explainer, pairs)
            offline_seconds.append(time.perf_counter() - started)
            for c in levels:
                before = server.info()["queue"]["calls"]
                seconds, waits, texts = load(server.url, pairs, c, args.pairs_per_request)
                level_seconds[c].append(seconds)
                latencies[c].extend(waits)
                calls[c].append(server.info()["queue"]["calls"] - before)
                assert texts == expected, f"concurrency {c}: the server's texts differ from offline's"
    finally:
        server.stop()
    offline_rate = len(pairs) / statistics.median(offline_seconds)
    results["offline"] = {"seconds": offline_seconds, "pairs_per_second": offline_rate}
    results["server"] = {
        str(c): {
            "seconds": level_seconds[c],
            "pairs_per_second": len(pairs) / statistics.median(level_seconds[c]),
            "ratio_to_offline": len(pairs) / statistics.median(level_seconds[c]) / offline_rate,
            "latency_p50_ms": 1000 * percentile(latencies[c], 50),
            "latency_p99_ms": 1000 * percentile(latencies[c], 99),
            "decoding_calls": calls[c],
        }
        for c in levels
    }
    results["texts_equal_offline"] = True
    results["burst"] = None if args.no_burst else burst(args.run, pairs, args.burst_queue)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: results[k] for k in ("offline", "server", "burst")}, indent=1))
    print(f"wrote {args.out}")


def load_offline(run: Path, count: int) -> tuple[Any, list[Any]]:
    """The run loaded as ``generate --pairs`` loads it, and the first ``count`` test pairs of its split."""
    import torch

    from pepler_cli.config import GenerateConfig
    from pepler_cli.data.pairs import Pair
    from pepler_cli.generation.explainer import Explainer
    from pepler_cli.run_model import load_run

    config = GenerateConfig(run=run, out=Path("unused.jsonl"), device="cpu")
    device = torch.device("cpu")
    explainer = Explainer(config, load_run(run, device), device)
    dataset = explainer.data.dataset
    assert dataset is not None
    split = int(explainer.run.manifest["dataset"]["split"])
    records = [dataset.records[n] for n in dataset.splits[split][2][:count]]
    return explainer, [Pair(r.user, r.item) for r in records]


def offline(explainer: Any, pairs: list[Any]) -> list[str]:
    from pepler_cli.generation.decode import DecodeOptions

    options = DecodeOptions.from_config(explainer.config, explainer.run.max_tokens)
    explained = explainer.explain(pairs, options, lambda k: f"pair {k}")
    return [e.generated for e in explained.explanations]


def ask(url: str, pairs: Any, client: httpx.Client | None = None) -> tuple[int, list[str] | None]:
    """One request for ``pairs`` (one pair, or a list); its status and texts."""
    chosen = pairs if isinstance(pairs, list) else [pairs]
    body = {"pairs": [{"user": pair.user, "item": pair.item} for pair in chosen]}
    response = (client or httpx).post(f"{url}/explain", json=body, timeout=REQUEST_TIMEOUT)
    if response.status_code != 200:
        return response.status_code, None
    return 200, [e["explanation"] for e in response.json()["explanations"]]


def load(
    url: str, pairs: list[Any], concurrency: int, per_request: int = 1
) -> tuple[float, list[float], list[str]]:
    """The pairs as requests of ``per_request`` pairs, ``concurrency`` clients at a time; (seconds, latencies,
    texts)."""
    texts: list[str | None] = [None] * len(pairs)
    waits: list[float] = []
    next_start = iter(range(0, len(pairs), per_request))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client() as connection:
            while True:
                with lock:
                    k = next(next_start, None)
                if k is None:
                    return
                started = time.perf_counter()
                status, got = ask(url, pairs[k : k + per_request], connection)
                waits.append(time.perf_counter() - started)
                assert status == 200 and got is not None, status
                texts[k : k + len(got)] = got

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, waits, [t or "" for t in texts]


def burst(run: Path, pairs: list[Any], queue: int) -> dict[str, Any]:
    """4 × ``queue`` requests at once against a server whose queue holds ``queue``: each gets 200 or 503."""
    server = Server(run, "--queue-size", str(queue), "--batch-size", "1", "--batch-wait-ms", "0")
    statuses: list[int] = []
    failures: list[str] = []
    try:
        server.wait_ready()
        barrier = threading.Barrier(4 * queue)

        def one(k: int) -> None:
            barrier.wait()
            try:
                statuses.append(ask(server.url, pairs[k % len(pairs)])[0])
            except httpx.HTTPError as error:  # a request that hung past the timeout, or was dropped
                failures.append(repr(error))

        threads = [threading.Thread(target=one, args=(k,)) for k in range(4 * queue)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        refused = server.info()["queue"]["refused"]
    finally:
        server.stop()
    return {
        "queue_size": queue,
        "requests": 4 * queue,
        "ok": statuses.count(200),
        "busy_503": statuses.count(503),
        "other": [s for s in statuses if s not in (200, 503)],
        "failed_or_hung": failures,
        "refused_by_batcher": refused,
        "seconds": seconds,
        "every_request_answered": len(statuses) == 4 * queue and not failures,
    }


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it: the results name no machine's folders."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Server:
    def __init__(self, run: Path, *options: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        command = [str(PEPLER), "serve", str(run), "--port", str(port), "--device", "cpu", *options]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"the server ended with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        sys.exit("the server was not ready in time")

    def info(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/info", timeout=30).json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)


if __name__ == "__main__":
    main()
