"""Where the course renders: a widget where a Jupyter front end can show one, text elsewhere
(the rule is the grader's, so that "Check my work" and the lesson widgets agree)."""

from __future__ import annotations

import html
from typing import Iterable, Sequence

from grader.display import headless as headless



def _display(widget) -> None:
    from IPython.display import display

    display(widget)


def human_size(n: float) -> str:
    """Bytes in the decimal units `docker images` uses."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def table_text(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _table_html(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{html.escape(str(c))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f"<table style='border-collapse:collapse;font-size:12px'><tr>{head}</tr>{body}</table>"
