"""Grading times: each exercise's reference solution graded cold (every build with --no-cache,
the service image included) and warm (everything from the build cache, as a learner's second
`make grade` is). Goals: warm grading of 01 and 03 within 10 s each, and of the whole course
(01-08, one after the other, as `make grade` does) within 120 s.

`run()` returns one row per measurement: name, value, unit, goal, met.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from grader import registry
from grader.errors import CannotGrade
from grader.grading import grade
from grader.options import GradingOptions
from grader.reporters import render_table
from grader.workspace import materialize

WARM_GOAL_S = {"01-first-image": 10.0, "03-permissions": 10.0}
COURSE_WARM_GOAL_S = 120.0


def _timed(exercise_id: str, workspace: Path, options: GradingOptions) -> float:
    start = time.monotonic()
    report = grade(exercise_id, workspace, options=options)
    elapsed = time.monotonic() - start
    if not report.full_marks:  # a timing of a wrong grading means nothing
        raise RuntimeError(f"the reference solution of {exercise_id} lost points:\n{render_table(report)}")
    return elapsed


def run() -> list[dict]:
    rows = []
    totals = {"cold": 0.0, "warm": 0.0}
    graded = 0
    base = GradingOptions.from_env()
    with tempfile.TemporaryDirectory(prefix="genai-bench-grading-") as tmp:
        for exercise in registry.all_exercises():
            workspace = materialize(exercise.id, Path(tmp) / exercise.id, with_solution=True)
            try:
                cold = _timed(exercise.id, workspace, GradingOptions.from_env(no_cache=True))
                warm = _timed(exercise.id, workspace, base)
            except (RuntimeError, CannotGrade) as exc:  # one exercise's trouble must not hide the others
                rows.append({"name": f"grading {exercise.id}: {str(exc).splitlines()[0]}", "value": None,
                             "unit": "s", "goal": "full marks", "met": False})
                continue
            totals["cold"] += cold
            totals["warm"] += warm
            graded += 1
            rows.append({"name": f"grading {exercise.id}, cold (no build cache)", "value": round(cold, 1),
                         "unit": "s", "goal": "", "met": None})
            goal = WARM_GOAL_S.get(exercise.id)
            rows.append({"name": f"grading {exercise.id}, warm", "value": round(warm, 1), "unit": "s",
                         "goal": f"<= {goal:g} s" if goal else "",
                         "met": (warm <= goal) if goal else None})
    every = len(registry.all_exercises())
    course = "the whole course" if graded == every else f"{graded} of {every} exercises"
    rows.append({"name": f"grading {course}, cold (no build cache)", "value": round(totals["cold"], 1),
                 "unit": "s", "goal": "", "met": None})
    rows.append({"name": f"grading {course}, warm", "value": round(totals["warm"], 1), "unit": "s",
                 "goal": f"<= {COURSE_WARM_GOAL_S:g} s",
                 "met": graded == every and totals["warm"] <= COURSE_WARM_GOAL_S})
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<48} {row['value']:>7} {row['unit']}  {row['goal'] or ''} "
              f"{'' if row['met'] is None else ('met' if row['met'] else 'MISSED')}")
