"""Dynamic batching: concurrent requests are gathered into batches under a token budget.

As in text-embeddings-inference, nothing waits for a batch to fill: whenever an inference
worker is free, it takes what is queued (up to MAX_BATCH_SIZE texts and MAX_BATCH_TOKENS
tokens). Under load the queue grows while workers are busy, so batches grow by themselves;
at rest a single request runs at once. A full queue refuses work (429) instead of letting
latency grow without bound.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InferenceError, NotReadyError, QueueFullError

BatchObserver = Callable[[int, int, float], None]  # (texts, tokens, seconds) of each batch


@dataclass(eq=False)
class _Job:
    """One request: its texts may be spread over several batches."""

    future: asyncio.Future
    vectors: np.ndarray
    remaining: int


@dataclass(eq=False)
class _Item:
    job: _Job
    index: int
    text: Any  # whatever embed_fn takes: the backend's token ids in the service
    tokens: int


@dataclass
class DynamicBatcher:
    embed_fn: Callable[[list[Any]], np.ndarray]
    dimension: int
    workers: int = 1
    max_batch_size: int = 32
    max_batch_tokens: int = 8192
    max_queue_size: int = 512
    on_batch: BatchObserver | None = None

    _queue: deque[_Item] = field(default_factory=deque, init=False)
    _tasks: set[asyncio.Task] = field(default_factory=set, init=False)
    _scheduler: asyncio.Task | None = field(default=None, init=False)
    _busy: int = field(default=0, init=False)  # workers running a batch
    _seconds_per_text: float = field(default=0.005, init=False)  # refined by every batch

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(self.workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="inference")
        self._scheduler = asyncio.create_task(self._schedule(), name="batch-scheduler")

    async def stop(self) -> None:
        if self._scheduler is None:
            return
        self._scheduler.cancel()
        await asyncio.gather(self._scheduler, *self._tasks, return_exceptions=True)
        self._scheduler = None
        for item in self._queue:
            if not item.job.future.done():
                item.job.future.set_exception(NotReadyError("the service is shutting down"))
        self._queue.clear()
        self._executor.shutdown(wait=True)

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: what a 429's Retry-After says."""
        return min(60, max(1, math.ceil(len(self._queue) * self._seconds_per_text / self.workers)))

    async def embed(self, texts: list[Any], tokens: list[int]) -> np.ndarray:
        """Vectors for `texts` ([n, dimension]), computed with whatever else is queued."""
        if self._scheduler is None:
            raise NotReadyError("the model is not loaded yet")
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        if len(self._queue) + len(texts) > self.max_queue_size:
            wait = self.retry_after()
            raise QueueFullError(f"the queue is full ({len(self._queue)} texts waiting); retry in {wait} s",
                                 headers={"Retry-After": str(wait)})
        job = _Job(future=asyncio.get_running_loop().create_future(),
                   vectors=np.empty((len(texts), self.dimension), dtype=np.float32), remaining=len(texts))
        self._queue.extend(_Item(job, i, t, n) for i, (t, n) in enumerate(zip(texts, tokens, strict=True)))
        self._wakeup.set()
        return await job.future  # cancelled with the request when the client goes away

    def _take(self) -> list[_Item]:
        """The next batch: FIFO, under both caps, leaving a share of the queue to each idle worker."""
        target = min(self.max_batch_size, math.ceil(len(self._queue) / (self.workers - self._busy)))
        batch: list[_Item] = []
        tokens = 0
        while self._queue and len(batch) < target:
            item = self._queue[0]
            if item.job.future.done():  # its request was cancelled or already failed
                self._queue.popleft()
                continue
            if batch and tokens + item.tokens > self.max_batch_tokens:
                break
            batch.append(self._queue.popleft())
            tokens += item.tokens
        return batch

    async def _schedule(self) -> None:
        while True:
            await self._slots.acquire()
            batch: list[_Item] = []
            while not batch:
                while not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                batch = self._take()
            self._busy += 1
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Item]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            vectors = await loop.run_in_executor(self._executor, self.embed_fn, [it.text for it in batch])
            if vectors.shape != (len(batch), self.dimension):
                raise ValueError(f"backend returned shape {vectors.shape} for {len(batch)} texts")
        except Exception as exc:  # the backend failed: every request of the batch gets the error
            error = InferenceError(f"inference failed: {type(exc).__name__}: {exc}")
            for item in batch:
                if not item.job.future.done():
                    item.job.future.set_exception(error)
            return
        finally:
            self._busy -= 1
            self._slots.release()
        seconds = time.perf_counter() - started
        self._seconds_per_text = 0.8 * self._seconds_per_text + 0.2 * seconds / len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch), sum(it.tokens for it in batch), seconds)
        for item, vector in zip(batch, vectors, strict=True):
            job = item.job
            if job.future.done():
                continue
            job.vectors[item.index] = vector
            job.remaining -= 1
            if job.remaining == 0:
                job.future.set_result(job.vectors)
