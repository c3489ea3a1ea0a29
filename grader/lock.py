"""Gradings that use fixed names (genai-data, genai-net, ...) run one at a time per engine.

run.sh must use the names the exercise fixes, so two such gradings on one engine
(an instructor autograding a class, tests in parallel) would collide. A lock
file serialises them: the second waits (up to `lock_timeout`) for the first.
The lock lives in the temp directory, one per engine address; set
GENAI_GRADER_LOCK to a shared path when several checkouts use one engine.
"""

from __future__ import annotations

import hashlib
import os

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from dockerkit.flock import flock_within
from grader.errors import GradingBusy


def lock_path() -> Path:
    explicit = os.environ.get("GENAI_GRADER_LOCK")
    if explicit:
        return Path(explicit)
    engine = os.environ.get("DOCKER_HOST", "default")
    digest = hashlib.sha256(engine.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"genai-course-grader-{digest}.lock"


@contextmanager
def grading_lock(timeout: float, path: Path | None = None,
                 announce: Callable[[str], None] | None = None) -> Iterator[None]:
    path = path or lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            os.fchmod(fd, 0o666)  # other users on the machine grade too
        except OSError:
            pass
        def waiting() -> None:
            if announce is not None:
                announce(f"waiting for another grading to finish (lock {path})")

        if not flock_within(fd, timeout, interval=0.5, on_wait=waiting):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise GradingBusy(f"another grading (pid {holder}) has held {path} for more than "
                              f"{timeout:.0f} s; wait for it to finish and grade again")
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


