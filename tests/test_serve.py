"""`pepler serve` for real: the server in a subprocess on a free loopback port, a tiny run trained on the NETE
fixture. Concurrent requests, equality with `generate --pairs`, 4xx answers, SIGTERM drain, refusals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pepler_cli.cli.app import app

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

runner = CliRunner()
STARTUP_SECONDS = 120  # importing torch and loading the run on a busy two-core machine


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(rated_run) -> Path:
    return rated_run[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``pepler serve`` in a subprocess; ``url`` once /readyz says ready."""

    def __init__(self, run: Path, *options: object) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "pepler_cli", "serve", str(run), "--port", str(self.port)]
        command += ["--device", "cpu", *map(str, options)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server ended with {self.process.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError("the server was not ready in time")

    def output(self) -> str:
        assert self.process.stdout is not None
        if self.process.poll() is None:
            return ""
        return self.process.stdout.read()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@pytest.fixture(scope="module")
def server(trained) -> Iterator[Server]:
    started = Server(trained, "--batch-wait-ms", "50", "--max-pairs", "8")
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def _pairs(run: Path) -> list[dict]:
    users = (run / "users.txt").read_text().split()
    items = (run / "items.txt").read_text().split()
    return [{"user": users[k % len(users)], "item": items[(3 * k) % len(items)]} for k in range(12)]


def test_concurrent_requests_get_what_generate_writes_for_the_same_pairs(server, trained, tmp_path):
    pairs = _pairs(trained)
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    out = tmp_path / "preds.jsonl"
    generated = invoke("generate", trained, "--pairs", pairs_file, "--out", out, "--device", "cpu")
    assert generated.exit_code == 0, generated.output
    expected = [json.loads(line)["generated"] for line in out.read_text().splitlines()]

    answers: dict[int, httpx.Response] = {}

    def ask(k: int) -> None:  # one request per pair, all at once: the batcher joins them
        answers[k] = httpx.post(f"{server.url}/explain", json={"pairs": [pairs[k]]}, timeout=60)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(len(pairs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert all(answers[k].status_code == 200 for k in range(len(pairs))), [a.text for a in answers.values()]
    got = [answers[k].json()["explanations"][0] for k in range(len(pairs))]
    assert [g["explanation"] for g in got] == expected
    assert all(g["predicted_rating"] is not None for g in got)
    queue = httpx.get(f"{server.url}/info").json()["queue"]
    assert queue["requests"] >= len(pairs) and queue["calls"] < queue["requests"]  # some calls were shared


def test_refusals_are_json_naming_the_field(server, trained):
    pair = _pairs(trained)[0]
    url = f"{server.url}/explain"
    unknown = httpx.post(url, json={"pairs": [pair, {"user": "nobody", "item": pair["item"]}]})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "pairs", 1, "user"]
    malformed = httpx.post(url, content=b'{"pairs": [', headers={"content-type": "application/json"})
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["type"] == "json_invalid"
    too_many = httpx.post(url, json={"pairs": [pair] * 9})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"] == ["body", "pairs"]
    info = httpx.get(f"{server.url}/info").json()
    assert info["model"] == "pepler" and info["rating_head"] == "mlp" and info["training_data"]["fingerprint"]
    assert httpx.get(f"{server.url}/openapi.json").json()["paths"]["/explain"]["post"]


def test_a_run_that_fails_to_load_stops_the_server_with_one_line(trained, tmp_path):
    broken = tmp_path / "run"
    broken.mkdir()
    for path in trained.iterdir():
        if path.is_file():
            (broken / path.name).write_bytes(path.read_bytes())
    (broken / "tokenizer").symlink_to(trained / "tokenizer")
    weights = next(p for p in broken.iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:-8])
    server = Server(broken)
    code = server.process.wait(STARTUP_SECONDS)
    output = server.output()
    assert code == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and weights.name in errors[0] and "Traceback" not in output


def test_serving_beyond_loopback_needs_a_token(trained, tmp_path):
    refused = invoke("serve", trained, "--host", "0.0.0.0")
    assert refused.exit_code == 2 and "needs an API token (--token-file)" in refused.output
    short = tmp_path / "token"
    short.write_text("abc\n")
    bad = invoke("serve", trained, "--token-file", short)
    assert bad.exit_code == 2 and "at least 16 characters" in bad.output
    wrong_run = invoke("serve", tmp_path / "missing")
    assert wrong_run.exit_code != 0 and "Traceback" not in wrong_run.output


def test_sigterm_finishes_the_requests_in_flight_then_exits_0(server, trained):
    """Last in the module: it stops the module's server."""
    pairs = _pairs(trained)[:4]
    slow = {"decoding": "beam", "beams": 8, "max_tokens": 60}
    started = time.perf_counter()
    httpx.post(f"{server.url}/explain", json={"pairs": pairs, "options": slow}, timeout=120)
    one = time.perf_counter() - started
    count = min(60, max(4, int(3.0 / one) + 1))  # enough to keep the server busy for about three seconds
    finished: list[tuple[int, float]] = []

    def ask(k: int) -> None:
        body = {"pairs": pairs, "options": {**slow, "seed": k}}  # other seeds: other calls, queued in turn
        response = httpx.post(f"{server.url}/explain", json=body, timeout=120)
        finished.append((response.status_code, time.perf_counter()))

    before = httpx.get(f"{server.url}/info").json()["queue"]["requests"]
    threads = [threading.Thread(target=ask, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()

    def received() -> bool:  # every request is in the server, some still waiting behind the one decoded
        queue = httpx.get(f"{server.url}/info").json()["queue"]
        return (
            queue["requests"] - before + queue["decoding"] + queue["waiting"] == count
            and queue["waiting"] > 0
        )

    deadline = time.monotonic() + 30
    while not received() and time.monotonic() < deadline:
        time.sleep(0.005)
    server.process.send_signal(signal.SIGTERM)
    signalled = time.perf_counter()
    for thread in threads:
        thread.join(120)
    assert [status for status, _ in finished] == [200] * count
    assert max(at for _, at in finished) > signalled  # answered after the signal: drained, not dropped
    assert server.stop() == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/healthz", timeout=2)
