"""Dynamic batching: the pairs of concurrent requests decoded together on the one loaded model.

Requests wait in a bounded queue; a full queue refuses the next one at once (the server answers 503 with
Retry-After), so no request waits without limit. One worker takes the oldest request and gathers the requests
that decode alike (same options) while they keep arriving less than ``wait_seconds`` apart (at most ten times
that in all), until ``max_pairs`` pairs; the model then explains them in one call on a worker thread, and each
request gets its own slice back. Greedy and beam
outputs do not depend on which rows share a batch; sampled ones are seeded by their row, so a sampled request
is decoded alone, its rows numbered from 0 as ``generate --pairs`` numbers them.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pepler_cli.data.pairs import Pair
from pepler_cli.generation.decode import DecodeOptions

Result = TypeVar("Result")
Explain = Callable[[Sequence[Pair], DecodeOptions], Sequence[Result]]  # one result per pair, in order
SAMPLED = ("top-k", "top-p")
LONGEST_WAIT = 10  # a call waits at most this many --batch-wait-ms for requests to join it


class QueueFull(Exception):
    """The queue holds as many requests as it may: answer 503 and let the client retry."""


@dataclass(eq=False)
class _Job(Generic[Result]):
    pairs: Sequence[Pair]
    options: DecodeOptions
    future: asyncio.Future[list[Result]]
    key: object  # jobs with equal keys may share a decoding call


@dataclass
class Stats:
    """What the batcher has done, for /info and the benchmark."""

    calls: int = 0  # decoding calls
    requests: int = 0  # requests explained
    pairs: int = 0  # pairs explained
    refused: int = 0  # requests refused with the queue full
    largest_call: int = 0  # pairs in the largest call
    sizes: collections.Counter[int] = field(default_factory=collections.Counter)  # requests per call


class Batcher(Generic[Result]):
    """Gathers requests into decoding calls of ``explain`` on one worker thread (the module's docstring)."""

    def __init__(
        self, explain: Explain[Result], max_pairs: int, wait_seconds: float, queue_size: int
    ) -> None:
        self.explain = explain
        self.max_pairs = max_pairs
        self.wait_seconds = wait_seconds
        self.queue_size = queue_size
        self.stats = Stats()
        self._waiting: collections.deque[_Job[Result]] = collections.deque()
        self._arrived = asyncio.Event()
        self._serial = itertools.count()
        # One thread: the model is used by one call at a time, and the event loop stays free meanwhile.
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="pepler-decode"
        )
        self._worker: asyncio.Task[None] | None = None
        self._decoding = 0

    @property
    def waiting(self) -> int:
        """Requests in the queue."""
        return len(self._waiting)

    @property
    def decoding(self) -> int:
        """Requests in the call being decoded."""
        return self._decoding

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="pepler-batcher")

    async def stop(self) -> None:
        """Stop the worker (after the server has answered every request in flight) and its thread."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for job in self._waiting:
            if not job.future.done():
                job.future.cancel()
        self._thread.shutdown(wait=True)

    def submit(self, pairs: Sequence[Pair], options: DecodeOptions) -> asyncio.Future[list[Result]]:
        """Queue a request; its future gets one result per pair. Raises :class:`QueueFull`."""
        if len(self._waiting) >= self.queue_size:
            self.stats.refused += 1
            raise QueueFull
        sampled = options.decoding in SAMPLED
        key = (options, next(self._serial)) if sampled else options
        job: _Job[Result] = _Job(pairs, options, asyncio.get_running_loop().create_future(), key)
        self._waiting.append(job)
        self._arrived.set()
        return job.future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            await self._gather(loop)
            jobs = self._take()
            if not jobs:
                continue
            pairs = [pair for job in jobs for pair in job.pairs]
            self._decoding = len(jobs)
            try:
                results = await loop.run_in_executor(self._thread, self.explain, pairs, jobs[0].options)
            except Exception as error:  # noqa: BLE001 - every waiting request gets the error, as a 500
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            finally:
                self._decoding = 0
            self._hand_out(jobs, list(results))

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait for others that can share the oldest request's call: while they keep arriving less than
        ``wait_seconds`` apart (clients answered by the last call send their next requests in a burst), at most
        :data:`LONGEST_WAIT` times ``wait_seconds`` in all, until ``max_pairs`` pairs."""
        start = loop.time()
        deadline = start + self.wait_seconds
        while self._alike_pairs() < self.max_pairs:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return
            deadline = min(loop.time() + self.wait_seconds, start + LONGEST_WAIT * self.wait_seconds)

    def _alike_pairs(self) -> int:
        first = self._waiting[0]
        if first.options.decoding in SAMPLED:
            return self.max_pairs  # decoded alone: nothing to wait for
        return sum(len(job.pairs) for job in self._waiting if job.key == first.key)

    def _take(self) -> list[_Job[Result]]:
        """The oldest live request and those after it with the same key, within ``max_pairs`` pairs."""
        while self._waiting and self._waiting[0].future.done():  # timed out or cancelled while waiting
            self._waiting.popleft()
        if not self._waiting:
            return []
        first = self._waiting.popleft()
        taken, count, kept = [first], len(first.pairs), collections.deque[_Job[Result]]()
        for job in self._waiting:
            if job.future.done():
                continue
            if job.key == first.key and count + len(job.pairs) <= self.max_pairs:
                taken.append(job)
                count += len(job.pairs)
            else:
                kept.append(job)
        self._waiting = kept
        return taken

    def _hand_out(self, jobs: list[_Job[Result]], results: list[Result]) -> None:
        start = 0
        for job in jobs:
            mine = results[start : start + len(job.pairs)]
            start += len(job.pairs)
            if not job.future.done():
                job.future.set_result(mine)
        stats = self.stats
        stats.calls += 1
        stats.requests += len(jobs)
        stats.pairs += start
        stats.largest_call = max(stats.largest_call, start)
        stats.sizes[len(jobs)] += 1
