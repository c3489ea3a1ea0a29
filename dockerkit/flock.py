"""An exclusive file lock taken within a time limit (fcntl.flock has no timeout of its own)."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable


def flock_within(fd: int, timeout: float, *, interval: float = 0.05, on_wait: Callable[[], None] | None = None) -> bool:
    """Lock `fd` exclusively, retrying every `interval` s for up to `timeout` s; False if another holder
    kept it that long. `on_wait` is called once, when the first try finds it taken."""
    deadline = time.monotonic() + timeout
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            time.sleep(interval)
