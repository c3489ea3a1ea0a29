"""A fake inference backend: deterministic vectors without the model, and a gate to hold batches."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import numpy as np

from app.backend import BackendInfo

DIMENSION = 384


def fake_vector(text: str) -> np.ndarray:
    """The same text always gives the same unit vector; different texts are nearly orthogonal."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
    return v / np.linalg.norm(v)


@dataclass(frozen=True)
class FakeTokens:
    """A fake tokenization: it keeps its text (the fake vectors hash it) and has a token count."""

    text: str
    count: int

    def __len__(self) -> int:
        return self.count


class FakeBackend:
    """Implements the Embedder protocol. `gate` (when set) blocks every batch until it is opened."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.info = BackendInfo(model_id="fake/minilm", variant="int8", dimension=DIMENSION, max_tokens=256,
                                execution_provider="CPUExecutionProvider", providers=["CPUExecutionProvider"])
        self.gate = gate
        self.fail = fail
        self.batches: list[list[str]] = []
        self.entered = threading.Semaphore(0)  # released once per batch that reached the backend

    def tokenize(self, texts: list[str]) -> list[FakeTokens]:
        return [FakeTokens(t, min(256, len(t.split()) + 2)) for t in texts]

    def embed_tokens(self, rows: list[FakeTokens]) -> np.ndarray:
        return self.embed([r.text for r in rows])

    def embed(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        self.entered.release()
        if self.gate is not None and not self.gate.wait(timeout=30):
            raise TimeoutError("the test never opened the gate")
        if self.fail:
            raise RuntimeError("simulated backend failure")
        return np.stack([fake_vector(t) for t in texts])



def factory(backend: FakeBackend):
    """A BackendFactory for create_app that hands out this instance."""
    return lambda settings: (lambda: backend)
