"""dockerkit.flock: an exclusive lock within a time limit."""

from __future__ import annotations

import os

from dockerkit.flock import flock_within


def test_a_free_lock_is_taken_at_once_and_a_held_one_is_refused_after_the_limit(tmp_path):
    """Does a second open of the file wait, say so once, and give up while the first holds it?"""
    path = tmp_path / "lock"
    first = os.open(path, os.O_RDWR | os.O_CREAT)
    second = os.open(path, os.O_RDWR)
    waits: list[int] = []
    try:
        assert flock_within(first, 1.0) is True
        assert flock_within(second, 0.2, interval=0.01, on_wait=lambda: waits.append(1)) is False
        assert waits == [1]
        os.close(first)
        first = -1
        assert flock_within(second, 1.0) is True
    finally:
        for fd in (first, second):
            if fd >= 0:
                os.close(fd)
