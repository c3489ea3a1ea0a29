"""Grading a class: submissions per hour through the grading jobs `make autograde` runs
(course/instructor/jobs.py), one job at a time vs N at once, the same submissions in one run.

The submissions: the reference and the untouched starter of exercises 01 and 02 (four distinct
jobs, each executed in one box and cross-checked in another). Each measurement starts from an
empty job store, so no result is reused. GENAI_BENCH_CLASS_JOBS sets N (default 2).

The last line printed reads `class: <R>x serial at concurrency <N>; two workers <W>x serial`;
two workers (a task queue feeding several grading hosts) is not built yet, and says so.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

EXERCISES = ("01-first-image", "02-storage")
GOAL_RATIO = 2.0
SUMMARY: list[str] = []


def _plan_class(root: Path) -> list[dict[str, str]]:
    """Plan the jobs of the class into the job store under `root` (GENAI_COURSE_ROOT)."""
    import nbformat

    from course.instructor import jobs
    from course.instructor.preprocessors import runnable_copy
    from grader.workspace import materialize

    rows = []
    for exercise in EXERCISES:
        for who, with_solution in (("reference", True), ("starter", False)):
            folder = materialize(exercise, root / "submissions" / who / exercise, with_solution=with_solution)
            notebook = next(folder.glob("*.ipynb"))
            runnable = nbformat.writes(runnable_copy(nbformat.read(notebook, as_version=4)))
            key = jobs.plan(runnable, folder, who, exercise)
            rows.append({"student": who, "exercise": exercise, "key": key})
    return rows


def _measure(boxes: int) -> tuple[float, list]:
    from course.instructor import jobs
    from course.instructor.box import JANITOR

    with tempfile.TemporaryDirectory(prefix="genai-bench-class-") as tmp:
        previous = os.environ.get("GENAI_COURSE_ROOT")
        os.environ["GENAI_COURSE_ROOT"] = tmp
        try:
            rows = _plan_class(Path(tmp))
            start = time.monotonic()
            states = jobs.JobRunner(boxes, echo=lambda line: print(f"  {line}", flush=True)).run(rows)
            elapsed = time.monotonic() - start
            JANITOR.drain()
        finally:
            if previous is None:
                os.environ.pop("GENAI_COURSE_ROOT", None)
            else:
                os.environ["GENAI_COURSE_ROOT"] = previous
            shutil.rmtree(Path(tmp) / ".state", ignore_errors=True)
    failed = [s.error for s in states if s.error]
    if failed:
        raise RuntimeError(f"a grading job failed: {failed[0]}")
    return elapsed, states


def _phase_means(states: list) -> dict[str, float]:
    spans: dict[str, list[float]] = {"box ready": [], "executed": [], "cross-checked": []}
    for s in states:
        p = s.phases
        started = p.get("started")
        if started is None:
            continue
        for name, key in (("box ready", "box_ready"), ("executed", "executed"), ("cross-checked", "cross_checked")):
            if key in p:
                spans[name].append(p[key] - started)
    return {name: statistics.mean(values) for name, values in spans.items() if values}


def run() -> list[dict]:
    from course.instructor import boximage

    boximage.ensure_image(lambda line: print(line, flush=True))
    n = int(os.environ.get("GENAI_BENCH_CLASS_JOBS") or 2)
    serial_s, serial_states = _measure(2)          # two boxes: one job at a time
    parallel_s, parallel_states = _measure(2 * n)  # N jobs at once
    count = len(serial_states)
    serial_rate, parallel_rate = count * 3600 / serial_s, count * 3600 / parallel_s
    ratio = parallel_rate / serial_rate
    rows: list[dict] = [
        {"name": f"submissions/hour, concurrency 1 ({count} jobs, {serial_s:.0f} s)", "value": serial_rate,
         "unit": "/h", "goal": "", "met": None},
        {"name": f"submissions/hour, concurrency {n} ({count} jobs, {parallel_s:.0f} s)", "value": parallel_rate,
         "unit": "/h", "goal": "", "met": None},
        {"name": f"ratio, concurrency {n} vs 1", "value": ratio, "unit": "x",
         "goal": f">= {GOAL_RATIO:g}x", "met": ratio >= GOAL_RATIO},
        {"name": "two workers (task queue)", "value": "not built", "unit": "", "goal": "", "met": None},
    ]
    for label, states in (("concurrency 1", serial_states), (f"concurrency {n}", parallel_states)):
        for phase, mean in _phase_means(states).items():
            rows.append({"name": f"{label}: mean s from job start to {phase}", "value": mean, "unit": "s",
                         "goal": "", "met": None})
    SUMMARY[:] = [f"class: {ratio:.2f}x serial at concurrency {n}; two workers not built"]
    return rows


def summary() -> str:
    return SUMMARY[0] if SUMMARY else "class: not measured (see the error above); two workers not built"
