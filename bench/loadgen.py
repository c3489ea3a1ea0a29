"""A small HTTP/1.1 load generator: N keep-alive clients on asyncio streams, closed loop.

Deliberately lighter than an HTTP library, because it shares the machine's CPUs with the
server it measures; every server is measured with the same client.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies += other.latencies

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]


def request_bytes(path: str, payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _client(port: int, requests: itertools.cycle, stop_at: float, result: LoadResult,
                  check) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            raw = next(requests)
            started = time.perf_counter()
            writer.write(raw)
            status, body = await _read_response(reader)
            result.latencies.append(time.perf_counter() - started)
            result.requests += 1
            if status != 200 or (check is not None and not check(body)):
                result.errors += 1
    finally:
        writer.close()


def run_load(port: int, requests: list[bytes], clients: int, seconds: float, check=None) -> LoadResult:
    """`clients` concurrent connections, each sending the next request as soon as it has an answer."""
    async def main() -> LoadResult:
        result = LoadResult()
        cycle = itertools.cycle(requests)
        started = time.perf_counter()
        await asyncio.gather(*(_client(port, cycle, started + seconds, result, check) for _ in range(clients)))
        result.seconds = time.perf_counter() - started
        return result

    return asyncio.run(main())
