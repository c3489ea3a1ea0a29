"""Prometheus metrics in the text exposition format, written by hand (no client library needed)."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BATCH_TOKEN_BUCKETS = (16, 64, 256, 1024, 4096, 16384)


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    escaped = (v.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n") for v in values)
    parts = [f'{n}="{v}"' for n, v in zip(names, escaped)] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    kind = "counter"

    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labelnames = name, help, labels
        self._values: dict[tuple[str, ...], float] = {} if labels else {(): 0.0}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self._values[labels] = self._values.get(labels, 0.0) + amount

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(self.labelnames, k)} {_num(v)}" for k, v in sorted(self._values.items())]


class Histogram:
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> None:
        self.name, self.help, self.labelnames, self.buckets = name, help, labels, buckets
        self._series: dict[tuple[str, ...], list] = {}  # labels -> [bucket counts..., sum, count]

    def observe(self, value: float, *labels: str) -> None:
        series = self._series.setdefault(labels, [0] * len(self.buckets) + [0.0, 0])
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.buckets):
            series[i] += 1
        series[-2] += value
        series[-1] += 1

    def samples(self) -> list[str]:
        lines = []
        for labels, series in sorted(self._series.items()):
            cumulative = 0
            for bound, count in zip(self.buckets, series):
                cumulative += count
                le = 'le="%s"' % _num(bound)
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, labels, le)} {cumulative}")
            inf = 'le="+Inf"'
            lines.append(f"{self.name}_bucket{_labels(self.labelnames, labels, inf)} {series[-1]}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, labels)} {_num(series[-2])}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, labels)} {series[-1]}")
        return lines


class Gauge:
    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        self.name, self.help, self._read = name, help, read

    def samples(self) -> list[str]:
        return [f"{self.name} {_num(self._read())}"]


class Metrics:
    """The service's metrics. One instance per app, so tests never share counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = Counter("genai_http_requests_total", "HTTP requests by route, method and status.",
                                ("route", "method", "status"))
        self.latency = Histogram("genai_http_request_duration_seconds", "HTTP request latency by route.",
                                 LATENCY_BUCKETS, ("route",))
        self.batch_size = Histogram("genai_batch_size", "Texts per inference batch.", BATCH_SIZE_BUCKETS)
        self.batch_tokens = Histogram("genai_batch_tokens", "Tokens per inference batch.", BATCH_TOKEN_BUCKETS)
        self.inference = Histogram("genai_batch_duration_seconds", "Time to embed one batch.", LATENCY_BUCKETS)
        self.texts = Counter("genai_embedded_texts_total", "Texts embedded.")
        self._gauges: list[Gauge] = []

    def gauge(self, name: str, help: str, read: Callable[[], float]) -> None:
        self._gauges.append(Gauge(name, help, read))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests.inc(route, method, str(status))
            self.latency.observe(seconds, route)

    def observe_batch(self, texts: int, tokens: int, seconds: float) -> None:
        with self._lock:
            self.batch_size.observe(texts)
            self.batch_tokens.observe(tokens)
            self.inference.observe(seconds)
            self.texts.inc(amount=texts)

    def render(self) -> str:
        out = []
        with self._lock:
            for metric in (self.requests, self.latency, self.batch_size, self.batch_tokens,
                           self.inference, self.texts, *self._gauges):
                out += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.kind}"]
                out += metric.samples()
        return "\n".join(out) + "\n"


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
