"""`pepler serve` without a model: the dynamic batcher (serving/batcher.py) and the API's answers (serving/app.py)
around a fake explainer whose speed the test controls. The real server, in a subprocess, is tests/test_serve.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from pepler_cli.config import ServeConfig
from pepler_cli.data.pairs import Pair
from pepler_cli.generation.decode import DecodeOptions
from pepler_cli.generation.explainer import Explanation, Problem
from pepler_cli.serving.app import Guard, ServerState, build_app
from pepler_cli.serving.batcher import Batcher, QueueFull

GREEDY = DecodeOptions()


@dataclass
class Recorder:
    """An explain function that records each call's pairs and can be held back by an event."""

    calls: list[list[str]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    fail: bool = False

    def __call__(self, pairs: Sequence[Pair], options: DecodeOptions) -> list[str]:
        self.gate.wait(10)
        if self.fail:
            raise RuntimeError("decoding failed")
        self.calls.append([p.user for p in pairs])
        return [f"{p.user}/{p.item}/{options.decoding}" for p in pairs]


def _pairs(*users: str) -> list[Pair]:
    return [Pair(user, "i") for user in users]


def test_alike_requests_share_a_call_and_each_gets_its_own_slice():
    async def scenario() -> tuple[list, Recorder]:
        explain = Recorder()
        batcher = Batcher(explain, max_pairs=5, wait_seconds=0.2, queue_size=10)
        batcher.start()
        futures = [batcher.submit(_pairs(f"a{k}", f"b{k}"), GREEDY) for k in range(3)]
        explain.gate.set()
        results = await asyncio.gather(*futures)
        await batcher.stop()
        return results, explain

    results, explain = asyncio.run(scenario())
    assert results == [[f"a{k}/i/greedy", f"b{k}/i/greedy"] for k in range(3)]
    # 5 pairs at most per call: the first two requests together, the third alone.
    assert explain.calls == [["a0", "b0", "a1", "b1"], ["a2", "b2"]]


def test_a_call_waits_while_requests_keep_coming_and_no_longer():
    async def scenario() -> Recorder:
        explain = Recorder()
        explain.gate.set()
        batcher = Batcher(explain, max_pairs=100, wait_seconds=0.2, queue_size=10)
        batcher.start()
        futures = []
        for k in range(4):  # 0.12 s apart: each within the 0.2 s window of the last, 0.36 s in all
            futures.append(batcher.submit(_pairs(f"r{k}"), GREEDY))
            await asyncio.sleep(0.12)
        await asyncio.sleep(0.4)  # a gap longer than the window: the call has gone
        futures.append(batcher.submit(_pairs("late"), GREEDY))
        await asyncio.gather(*futures)
        await batcher.stop()
        return explain

    assert asyncio.run(scenario()).calls == [["r0", "r1", "r2", "r3"], ["late"]]


def test_other_options_and_sampled_requests_are_decoded_apart():
    async def scenario() -> Recorder:
        explain = Recorder()
        batcher = Batcher(explain, max_pairs=100, wait_seconds=0.1, queue_size=10)
        batcher.start()
        sampled = DecodeOptions(decoding="top-k")
        futures = [
            batcher.submit(_pairs("g1"), GREEDY),
            batcher.submit(_pairs("s1"), sampled),
            batcher.submit(_pairs("g2"), GREEDY),
            batcher.submit(_pairs("s2"), sampled),
            batcher.submit(_pairs("b1"), DecodeOptions(decoding="beam")),
        ]
        explain.gate.set()
        await asyncio.gather(*futures)
        await batcher.stop()
        return explain

    calls = asyncio.run(scenario()).calls
    # Greedy ones share a call; each sampled one has its own (its rows are numbered from 0); beam apart.
    assert sorted(calls) == sorted([["g1", "g2"], ["s1"], ["s2"], ["b1"]])


def test_a_full_queue_refuses_at_once_and_a_cancelled_request_is_left_out():
    async def scenario() -> tuple[Recorder, int]:
        explain = Recorder()
        batcher = Batcher(explain, max_pairs=1, wait_seconds=0, queue_size=2)
        batcher.start()
        first = batcher.submit(_pairs("busy"), GREEDY)
        await asyncio.sleep(0.05)  # the worker has taken it and waits at the gate
        waiting = [batcher.submit(_pairs(f"w{k}"), GREEDY) for k in range(2)]
        with pytest.raises(QueueFull):
            batcher.submit(_pairs("over"), GREEDY)
        waiting[0].cancel()  # as a request that timed out
        explain.gate.set()
        await asyncio.gather(first, waiting[1])
        await batcher.stop()
        return explain, batcher.stats.refused

    explain, refused = asyncio.run(scenario())
    assert explain.calls == [["busy"], ["w1"]] and refused == 1


def test_a_failed_call_fails_its_requests_only():
    async def scenario() -> None:
        explain = Recorder(fail=True)
        explain.gate.set()
        batcher = Batcher(explain, max_pairs=10, wait_seconds=0, queue_size=10)
        batcher.start()
        with pytest.raises(RuntimeError, match="decoding failed"):
            await batcher.submit(_pairs("a"), GREEDY)
        explain.fail = False
        assert await batcher.submit(_pairs("b"), GREEDY) == ["b/i/greedy"]
        await batcher.stop()

    asyncio.run(scenario())


# --- the API around a fake explainer ------------------------------------------------------------------------


class FakeExplainer:
    """What the routes ask of an Explainer: problems, hinted, run.max_tokens."""

    hinted = False
    run = SimpleNamespace(max_tokens=20)

    def problems(self, pairs: Sequence[Pair]) -> list[Problem]:
        return [
            Problem(k, "user", f"{p.user!r} is unknown") for k, p in enumerate(pairs) if p.user == "nobody"
        ]


def _client(tmp_path: Path, explain: Recorder, token: str | None = None, **options: object):
    config = ServeConfig(run=tmp_path, **options)
    state = ServerState(config, token, info={"model": "fake"})
    app = build_app(state)

    def wrapped(pairs: Sequence[Pair], decode: DecodeOptions) -> list[Explanation]:
        return [Explanation(text) for text in explain(pairs, decode)]

    async def start() -> None:
        state.explainer = FakeExplainer()  # type: ignore[assignment]
        state.batcher = Batcher(wrapped, config.batch_size, config.batch_wait_ms / 1000, config.queue_size)
        state.batcher.start()

    app.router.on_startup.append(start)
    return TestClient(Guard(app, token, config.max_body_bytes)), state


def test_explain_answers_and_refuses_in_json_naming_the_field(tmp_path):
    explain = Recorder()
    explain.gate.set()
    client, _ = _client(tmp_path, explain, max_pairs=3, max_body_bytes=2048)
    with client:
        ok = client.post(
            "/explain", json={"pairs": [{"user": "u", "item": 7}], "options": {"decoding": "beam"}}
        )
        assert ok.status_code == 200
        assert ok.json()["explanations"][0]["explanation"] == "u/7/beam" and ok.json()["model"] == "fake"
        cases = {
            '{"pairs": [': ["body", 11],
            '{"pairs": [{"user": "u"}]}': ["body", "pairs", 0, "item"],
            '{"pairs": [{"user": "u", "item": "i", "colour": 1}]}': ["body", "pairs", 0, "colour"],
            '{"pairs": [{"user": "nobody", "item": "i"}]}': ["body", "pairs", 0, "user"],
            '{"pairs": [{"user": "u", "item": "i", "feature": "pool"}]}': ["body", "pairs", 0, "feature"],
            '{"pairs": [{"user": "u", "item": "i"}], "options": {"top_p": 2}}': ["body", "options", "top_p"],
            '{"pairs": [{"user": "u", "item": "i"}], "options": {"beam_groups": 3}}': ["body", "options"],
            '{"pairs": [{"user": "u", "item": "i"}], "options": {"device": "cuda"}}': [
                "body",
                "options",
                "device",
            ],
            '{"pairs": [' + ", ".join(['{"user": "u", "item": "i"}'] * 4) + "]}": ["body", "pairs"],
        }
        for body, loc in cases.items():
            answer = client.post("/explain", content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 422, (body, answer.text)
            assert answer.json()["detail"][0]["loc"][: len(loc)] == loc, (body, answer.json())
            assert "input" not in answer.json()["detail"][0]  # the body is not echoed back
        big = client.post("/explain", content=b"x" * 3000, headers={"content-type": "application/json"})
        assert big.status_code == 413 and "--max-body-bytes" in big.json()["detail"]


def test_a_full_queue_answers_503_and_a_slow_request_504(tmp_path):
    explain = Recorder()  # held at the gate: nothing finishes until the test says so
    client, state = _client(tmp_path, explain, queue_size=1, batch_wait_ms=0, request_timeout=0.5)
    body = {"pairs": [{"user": "u", "item": "i"}]}
    answers: list[int] = []
    with client:
        threads = [
            threading.Thread(target=lambda: answers.append(client.post("/explain", json=body).status_code))
        ]
        threads[0].start()
        time.sleep(0.2)  # the first is being decoded (held), the queue is empty
        threads.append(
            threading.Thread(target=lambda: answers.append(client.post("/explain", json=body).status_code))
        )
        threads[1].start()
        time.sleep(0.1)  # the second waits in the queue
        full = client.post("/explain", json=body)
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert "queue is full" in full.json()["detail"]
        for thread in threads:
            thread.join(5)
        assert sorted(answers) == [504, 504]  # neither was answered within 0.5 s: none hangs
        explain.gate.set()
        assert client.post("/explain", json=body).status_code == 200
        assert state.batcher is not None and state.batcher.stats.refused == 1


def test_a_token_guards_everything_but_the_probes(tmp_path):
    explain = Recorder()
    explain.gate.set()
    token = "s3cret-token-of-some-length"
    client, _ = _client(tmp_path, explain, token=token)
    with client:
        body = {"pairs": [{"user": "u", "item": "i"}]}
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            refused = client.post("/explain", json=body, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/docs").status_code == 401 and client.get("/info").status_code == 401
        allowed = {"Authorization": f"Bearer {token}"}
        assert client.post("/explain", json=body, headers=allowed).status_code == 200
        assert client.get("/info", headers=allowed).json()["ready"] is True
