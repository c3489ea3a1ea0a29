"""Files out of a container (running or only created) through the engine's archive API."""

from __future__ import annotations

import io
import tarfile
from typing import Any, Iterable, Iterator

import docker.errors


class ChunkReader(io.RawIOBase):
    """A file object over the chunks docker-py yields, for tarfile's streaming mode."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if close:
        close()


def stat(client: Any, container_id: str, path: str) -> dict[str, Any] | None:
    """The engine's stat of `path`, or None when it does not exist."""
    try:
        stream, found = client.api.get_archive(container_id, path)
    except docker.errors.NotFound:
        return None
    _close(stream)
    return dict(found)


def file_count(client: Any, container_id: str, path: str, stop_at: int = 1) -> int:
    """How many regular files lie under `path` (counting stops at `stop_at`; the archive streams)."""
    try:
        stream, _ = client.api.get_archive(container_id, path)
    except docker.errors.NotFound:
        return 0
    count = 0
    try:
        with tarfile.open(fileobj=ChunkReader(stream), mode="r|") as tar:
            for member in tar:
                if member.isfile():
                    count += 1
                    if count >= stop_at:
                        break
    except tarfile.TarError:
        pass
    finally:
        _close(stream)
    return count


def read_text(client: Any, container_id: str, path: str, limit: int = 1_000_000) -> str | None:
    """The text of the file at `path` (at most `limit` bytes), or None when there is none."""
    try:
        stream, _ = client.api.get_archive(container_id, path)
    except docker.errors.NotFound:
        return None
    data = io.BytesIO()
    try:
        for chunk in stream:
            data.write(chunk)
            if data.tell() > limit + 10_240:
                break
    finally:
        _close(stream)
    data.seek(0)
    try:
        with tarfile.open(fileobj=data) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            if member is None:
                return None
            handle = tar.extractfile(member)
            return handle.read(limit).decode("utf-8", errors="replace") if handle else None
    except tarfile.TarError:
        return None
