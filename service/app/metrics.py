"""Prometheus metrics with prometheus_client: one registry per app, so tests never share counters.

Besides the service's own metrics, the registry carries the process collector (process_*: CPU
seconds, resident memory, open and maximum file descriptors) and the container's cgroup limits
(genai_container_*), so that memory can be read against the limit it will be killed at.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import cgroup_cpu_quota

# Without this, every counter and histogram gets a *_created series: noise for a lesson's reader.
prometheus_client.disable_created_metrics()

CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BATCH_TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384)
CGROUP = Path("/sys/fs/cgroup")


def _read_number(path: Path) -> float | None:
    """A cgroup file's number; None when absent or unlimited ("max", or v1's huge sentinel)."""
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if value >= 2**62 else value


class ContainerCollector(Collector):
    """The cgroup's memory limit and usage, and its CPU quota (v2, else v1); absent when unlimited."""

    def __init__(self, root: Path = CGROUP) -> None:
        self.root = root

    def _memory(self) -> tuple[float | None, float | None]:
        v2 = (_read_number(self.root / "memory.max"), _read_number(self.root / "memory.current"))
        if (self.root / "memory.current").exists():
            return v2
        v1 = self.root / "memory"
        return _read_number(v1 / "memory.limit_in_bytes"), _read_number(v1 / "memory.usage_in_bytes")


    def collect(self) -> Iterator[GaugeMetricFamily]:
        limit, usage = self._memory()
        for name, help_text, value in (
            ("genai_container_memory_limit_bytes", "The container's memory limit (cgroup); absent when none.", limit),
            ("genai_container_memory_usage_bytes", "Memory the container's cgroup uses (page cache included).", usage),
            ("genai_container_cpu_limit", "The container's CPU quota in CPUs (cgroup); absent when none.",
             cgroup_cpu_quota(self.root)),
        ):
            if value is not None and math.isfinite(value):
                yield GaugeMetricFamily(name, help_text, value=value)


class Metrics:
    """The service's metrics and where they are exposed (`render()`)."""

    def __init__(self, cgroup_root: Path = CGROUP) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("genai_http_requests", "HTTP requests by route, method and status.",
                                ("route", "method", "status"), registry=r)
        self.latency = Histogram("genai_http_request_duration_seconds", "HTTP request latency by route.",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("genai_batch_size", "Texts per inference batch.",
                                    buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("genai_batch_tokens", "Tokens per inference batch.",
                                      buckets=BATCH_TOKEN_BUCKETS, registry=r)
        self.inference = Histogram("genai_batch_duration_seconds", "Time to embed one batch.",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.texts = Counter("genai_embedded_texts", "Texts embedded.", registry=r)
        self._gauges: dict[str, Gauge] = {}
        ProcessCollector(registry=r)
        r.register(ContainerCollector(cgroup_root))

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read at every scrape. Set again (a restarted lifespan), it reads the new source."""
        if name not in self._gauges:
            self._gauges[name] = Gauge(name, help_text, registry=self.registry)
        self._gauges[name].set_function(read)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_batch(self, texts: int, tokens: int, seconds: float) -> None:
        self.batch_size.observe(texts)
        self.batch_tokens.observe(tokens)
        self.inference.observe(seconds)
        self.texts.inc(texts)

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every HTTP request by its route template (never the raw path: ids would explode it)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(route, scope["method"], status, time.perf_counter() - started)
