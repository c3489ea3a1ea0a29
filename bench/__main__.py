"""`make bench` (python -m bench [NAME ...]): run each bench/*_bench.py, print one table, write it.

A benchmark module exposes `run() -> list[dict]`; each row has name, value, unit, goal (text,
may be empty) and met (True, False, or None where there is no goal). Results are data; this
module only renders them (as a Markdown table, on stdout and in bench/results/latest.md).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.md"
COLUMNS = ("benchmark", "name", "value", "unit", "goal", "met")


def discover(only: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.endswith("_bench"))
    return [n for n in names if not only or n.removesuffix("_bench") in only or n in only]


def run_module(name: str) -> list[dict]:
    module = importlib.import_module(f"bench.{name}")
    try:
        rows = module.run()
    except Exception as exc:  # one broken benchmark must not hide the others' numbers
        traceback.print_exc()
        rows = [{"name": "error", "value": f"{type(exc).__name__}: {exc}", "unit": "", "goal": "", "met": False}]
    return [{"benchmark": name.removesuffix("_bench"), **row} for row in rows]


def cell(row: dict, column: str) -> str:
    value = row.get(column)
    if value is None and column != "met":
        return ""
    if column == "met":
        return {True: "yes", False: "**no**", None: ""}[value]
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def render(rows: list[dict]) -> str:
    table = [list(COLUMNS)] + [[cell(r, c) for c in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(line, widths)) + " |" for line in table]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    names = discover(argv)
    if not names:
        print(f"bench: no benchmark matches {argv}", file=sys.stderr)
        return 2
    rows: list[dict] = []
    for name in names:
        started = time.monotonic()
        print(f"bench: running {name} ...", file=sys.stderr, flush=True)
        rows += run_module(name)
        print(f"bench: {name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    table = render(rows)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"# Benchmark results\n\n{time.strftime('%Y-%m-%d %H:%M:%S')}\n\n{table}")
    print(f"bench: written to {RESULTS.relative_to(HERE.parent)}", file=sys.stderr)
    for name in names:  # a benchmark's one-line summary, where it has one, comes last (class_bench)
        module = importlib.import_module(f"bench.{name}")
        if hasattr(module, "summary"):
            print(module.summary(), flush=True)
    return 1 if any(r["name"] == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
