"""Does the dynamic batcher gather concurrent requests under its caps, and fail cleanly?"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from app.batching import DynamicBatcher
from app.errors import InferenceError, NotReadyError, QueueFullError
from tests.service.fakes import DIMENSION, FakeBackend, fake_vector

pytestmark = pytest.mark.anyio


async def started(backend: FakeBackend, **options) -> DynamicBatcher:
    batcher = DynamicBatcher(backend.embed, DIMENSION, **options)
    await batcher.start()
    return batcher


async def wait_entered(backend: FakeBackend, count: int = 1) -> None:
    for _ in range(count):
        assert await asyncio.to_thread(backend.entered.acquire, True, 10), "no batch reached the backend"


async def queue_while_busy(batcher, backend, gate, requests: list[list[str]]):
    """Occupy the single worker, queue `requests`, then let everything run."""
    first = asyncio.create_task(batcher.embed(["first"], [3]))
    await wait_entered(backend)
    tasks = [asyncio.create_task(batcher.embed(texts, [3] * len(texts))) for texts in requests]
    while batcher.queue_depth < sum(map(len, requests)):
        await asyncio.sleep(0.001)  # let the tasks enqueue
    gate.set()
    return await first, await asyncio.gather(*tasks)


async def test_concurrent_requests_share_a_batch():
    """Are requests queued while the worker is busy embedded together, each getting its own vectors?"""
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    batcher = await started(backend, workers=1)
    try:
        requests = [["a"], ["b", "c"], ["d"]]
        _, results = await queue_while_busy(batcher, backend, gate, requests)
    finally:
        gate.set()
        await batcher.stop()
    assert backend.batches == [["first"], ["a", "b", "c", "d"]]
    for texts, vectors in zip(requests, results):
        np.testing.assert_array_equal(vectors, np.stack([fake_vector(t) for t in texts]))


async def test_batch_size_cap():
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    batcher = await started(backend, workers=1, max_batch_size=3)
    try:
        await queue_while_busy(batcher, backend, gate, [[str(i)] for i in range(7)])
    finally:
        gate.set()
        await batcher.stop()
    assert [len(b) for b in backend.batches] == [1, 3, 3, 1]


async def test_token_budget_cap():
    """Does a batch stop before MAX_BATCH_TOKENS (but always take at least one text)?"""
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    batcher = await started(backend, workers=1, max_batch_tokens=300)
    try:
        asyncio.create_task(batcher.embed(["first"], [3]))
        await wait_entered(backend)
        tasks = [asyncio.create_task(batcher.embed([f"t{i}"], [120])) for i in range(5)]
        while batcher.queue_depth < 5:
            await asyncio.sleep(0.001)  # let the tasks enqueue
        gate.set()
        await asyncio.gather(*tasks)
    finally:
        gate.set()
        await batcher.stop()
    assert [len(b) for b in backend.batches] == [1, 2, 2, 1]


async def test_work_is_shared_between_workers():
    """With two workers, is a queue of 8 split in two batches of 4 rather than one of 8?"""
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    batcher = await started(backend, workers=2)
    try:
        tasks = [asyncio.create_task(batcher.embed([f"{i}"], [3])) for i in range(8)]
        await wait_entered(backend, 2)
        gate.set()
        await asyncio.gather(*tasks)
    finally:
        gate.set()
        await batcher.stop()
    assert sorted(len(b) for b in backend.batches) == [4, 4]


async def test_full_queue_refuses_with_retry_after():
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    batcher = await started(backend, workers=1, max_queue_size=2)
    try:
        first = asyncio.create_task(batcher.embed(["first"], [3]))
        await wait_entered(backend)
        queued = asyncio.create_task(batcher.embed(["a", "b"], [3, 3]))
        while batcher.queue_depth < 2:
            await asyncio.sleep(0.001)  # let it enqueue
        with pytest.raises(QueueFullError) as refused:
            await batcher.embed(["c"], [3])
        assert int(refused.value.headers["Retry-After"]) >= 1
        gate.set()
        await first, await queued
    finally:
        gate.set()
        await batcher.stop()


async def test_backend_failure_reaches_every_request_of_the_batch():
    backend = FakeBackend(fail=True)
    batcher = await started(backend, workers=1)
    try:
        with pytest.raises(InferenceError, match="simulated backend failure"):
            await batcher.embed(["x"], [3])
    finally:
        await batcher.stop()


async def test_cancelled_requests_are_skipped():
    """Is a request whose client went away dropped from the queue instead of embedded?"""
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    batcher = await started(backend, workers=1)
    try:
        first = asyncio.create_task(batcher.embed(["first"], [3]))
        await wait_entered(backend)
        gone = asyncio.create_task(batcher.embed(["gone"], [3]))
        kept = asyncio.create_task(batcher.embed(["kept"], [3]))
        while batcher.queue_depth < 2:
            await asyncio.sleep(0.001)  # let them enqueue
        gone.cancel()
        gate.set()
        await first, await kept
    finally:
        gate.set()
        await batcher.stop()
    assert backend.batches == [["first"], ["kept"]]


async def test_stop_fails_what_is_still_queued():
    gate = threading.Event()
    backend = FakeBackend(gate=gate)
    batcher = await started(backend, workers=1)
    first = asyncio.create_task(batcher.embed(["first"], [3]))
    await wait_entered(backend)
    waiting = asyncio.create_task(batcher.embed(["late"], [3]))
    while batcher.queue_depth < 1:
        await asyncio.sleep(0.001)  # let it enqueue
    gate.set()
    await batcher.stop()
    await first
    with pytest.raises(NotReadyError):
        await waiting
    with pytest.raises(NotReadyError):
        await batcher.embed(["after"], [3])
