"""What the service holds while it runs: settings, backend, batcher, store, metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from .backend import Embedder
from .batching import DynamicBatcher
from .config import Settings
from .errors import InputTooLargeError, ModelError, NotReadyError, UnprocessableError
from .metrics import Metrics
from .store import DocumentStore, StoreHolder

log = logging.getLogger("app")
STORE_STARTUP_TIMEOUT_S = 30.0
INLINE_TOKENIZE_CHARS = 2000


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics
    store: StoreHolder
    backend: Embedder | None = None
    batcher: DynamicBatcher | None = None
    error: str | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.metrics.gauge("genai_queue_depth", "Texts waiting for inference.",
                           lambda: self.batcher.queue_depth if self.batcher else 0)
        self.metrics.gauge("genai_model_ready", "1 once the model is loaded and warmed up.",
                           lambda: 1 if self.ready else 0)

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    def start(self, load: Callable[[], Embedder]) -> None:
        self._tasks.append(asyncio.create_task(self._load(load), name="load-model"))

    async def _load(self, load: Callable[[], Embedder]) -> None:
        try:
            backend = await asyncio.to_thread(load)
        except ModelError as exc:
            self.error = exc.message
        except Exception as exc:  # anything else from onnxruntime/tokenizers: report, don't crash
            self.error = f"{type(exc).__name__}: {exc}"
        if self.error:
            log.error("the model could not be loaded: %s", self.error)
            return
        s = self.settings
        batcher = DynamicBatcher(backend.embed_tokens, backend.info.dimension, workers=s.inference_workers,
                                 max_batch_size=s.max_batch_size, max_batch_tokens=s.max_batch_tokens,
                                 max_queue_size=s.max_queue_size, on_batch=self.metrics.observe_batch)
        await batcher.start()
        self.backend, self.batcher = backend, batcher
        info = backend.info
        log.info("ready: %s (%s) on %s, %d worker(s) x %d thread(s), storage %s", info.model_id, info.variant,
                 info.execution_provider, s.inference_workers, s.threads_per_worker, self.store.kind)
        # Only a database server is worth waiting for; a SQLite error will not fix itself.
        wait = STORE_STARTUP_TIMEOUT_S if self.settings.database_url else 0.0
        await asyncio.to_thread(self.store.open_with_retry, wait)
        if self.store.error:
            log.warning("document storage unavailable: %s", self.store.error)

    async def stop(self) -> None:
        self.store.close()  # first: ends a startup retry loop still waiting for the database
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.batcher is not None:
            await self.batcher.stop()

    def require_ready(self) -> tuple[Embedder, DynamicBatcher]:
        if self.batcher is None or self.backend is None:
            detail = f"the model failed to load: {self.error}" if self.error else "the model is still loading"
            raise NotReadyError(detail, headers={} if self.error else {"Retry-After": "1"})
        return self.backend, self.batcher

    def check_inputs(self, texts: list[str]) -> None:
        s = self.settings
        if len(texts) > s.max_inputs:
            raise InputTooLargeError(f"{len(texts)} inputs; at most {s.max_inputs} per request (MAX_INPUTS)")
        for i, text in enumerate(texts):
            if len(text) > s.max_input_chars:
                raise InputTooLargeError(f"input {i} has {len(text)} characters; at most "
                                         f"{s.max_input_chars} (MAX_INPUT_CHARS)")
            if not text.isascii():
                try:  # JSON can smuggle in lone surrogates ("\ud800"), which no tokenizer or database takes
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise UnprocessableError(f"input {i} is not valid Unicode (a lone surrogate)") from None

    async def embed(self, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        """Checked, batched embedding: vectors [n, dimension] and each text's token count."""
        self.check_inputs(texts)
        backend, batcher = self.require_ready()
        # Tokenising a long request would stall the event loop; short ones are cheaper inline.
        if sum(map(len, texts)) > INLINE_TOKENIZE_CHARS:
            rows = await asyncio.to_thread(backend.tokenize, texts)
        else:
            rows = backend.tokenize(texts)
        tokens = [len(r) for r in rows]
        return await batcher.embed(rows, tokens), tokens

    async def documents(self) -> DocumentStore:
        return await run_in_threadpool(self.store.get)
