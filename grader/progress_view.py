"""Views of a grading's progress events: a live line in a terminal (rich), plain lines elsewhere.

The terminal view honours NO_COLOR and draws nothing live where its output is not a
terminal (CI logs, pipes): there it prints one plain line per phase, build step and
verdict. The report itself is rendered elsewhere (grader/reporters.py), after the grading."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from grader.progress import CHECK, DONE, PHASE, STEP, Event

_MARKS = {"passed": "✓", "failed": "✗", "skipped": "–"}


def plain_line(event: Event) -> str:
    if event.kind == STEP:
        return f"  build {event.text}"
    if event.kind == DONE:
        return f"{_MARKS.get(event.status or '', '·')} {event.text}"
    if event.kind == CHECK:
        return f"… {event.text}"
    return event.text


class TerminalProgress:
    """A listener for grader.progress: rich's live status where `file` is a terminal, plain lines if not."""

    def __init__(self, file: IO[str] | None = None, *, force_terminal: bool | None = None) -> None:
        from rich.console import Console

        self.console = Console(file=file or sys.stderr, force_terminal=force_terminal, highlight=False,
                               no_color="NO_COLOR" in os.environ or None, soft_wrap=True)
        self.live = self.console.is_terminal
        self._status: Any = None
        self._check = ""

    def __enter__(self) -> TerminalProgress:
        if self.live:
            self._status = self.console.status("grading …")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def note(self, line: str) -> None:
        """For `announce=`: a line the grading says once (waiting for the grading lock)."""
        self(Event(PHASE, line))

    def __call__(self, event: Event) -> None:
        if self._status is None:  # not a terminal, or used without `with`
            self.console.print(plain_line(event), markup=False)
            return
        if event.kind == CHECK:
            self._check = event.text
            self._status.update(f"grading · {self._escape(event.text)}")
        elif event.kind == STEP:
            self._status.update(f"grading · {self._escape(self._check or 'building')} · "
                                f"build {self._escape(event.text)[:100]}")
        elif event.kind == DONE:
            colour = {"✓": "green", "✗": "red"}.get(plain_line(event)[0], "yellow")
            self.console.print(f"[{colour}]{self._escape(plain_line(event))}[/]")
        else:
            self.console.print(self._escape(event.text))

    @staticmethod
    def _escape(text: str) -> str:
        from rich.markup import escape

        return escape(text)
