"""What a grading is doing now, as events: the phase, each check, each build step.

A grading can take minutes (a cold build); a learner who sees nothing for that long
thinks it hangs. The grading emits events to whoever listens in the current context
(the CLI's terminal view, the notebook's button); with no listener, emitting costs
nothing. Events are data; views render them (grader/progress_view.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from dockerkit.buildkit import step_header

PHASE, CHECK, DONE, STEP = "phase", "check", "done", "step"


@dataclass(frozen=True)
class Event:
    kind: str  # phase | check (started) | done (a check's verdict) | step (a build step started)
    text: str
    check: str | None = None
    status: str | None = None  # a DONE event's verdict: passed, failed or skipped


Listener = Callable[[Event], None]
_LISTENER: ContextVar[Listener | None] = ContextVar("grader_progress", default=None)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the events of what runs in this block (this thread or context) to `listener`."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def emit(kind: str, text: str, check: str | None = None, status: str | None = None) -> None:
    listener = _LISTENER.get()
    if listener is None:
        return
    try:
        listener(Event(kind, text, check, status))
    except Exception:  # a view that breaks never breaks the grading
        pass


def build_output_watcher() -> Callable[[bytes], None] | None:
    """For a bounded process's `on_output`: a STEP event per BuildKit step that starts.

    It runs on the process's reader thread, so it carries the listener with it."""
    listener = _LISTENER.get()
    if listener is None:
        return None
    pending = bytearray()
    seen: set[int] = set()

    def watch(chunk: bytes) -> None:
        pending.extend(chunk)
        *lines, rest = bytes(pending).split(b"\n")
        pending[:] = rest
        for raw in lines:
            header = step_header(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if header and header[1] != "internal" and header[0] not in seen:
                seen.add(header[0])
                try:
                    listener(Event(STEP, f"[{header[1]}] {header[2]}"))
                except Exception:
                    pass
    return watch
