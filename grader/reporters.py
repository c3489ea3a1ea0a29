"""Render results. Nothing here decides anything: a report goes in, text comes out."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Iterable, Mapping

from grader.registry import Exercise
from grader.results import CheckResult, ExerciseReport, Status

CONTRACT_CHECK_KEYS = ("id", "status", "points", "max_points", "message", "hint")
_MARK = {Status.PASSED: "pass", Status.FAILED: "FAIL", Status.SKIPPED: "skip"}
_COLOUR = {Status.PASSED: "\033[32m", Status.FAILED: "\033[31m", Status.SKIPPED: "\033[33m"}
_RESET = "\033[0m"


def points(value: float) -> str:
    return f"{value:g}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def check_to_dict(result: CheckResult) -> dict[str, Any]:
    return {"id": result.id, "status": result.status.value, "points": float(result.points),
            "max_points": float(result.max_points), "message": result.message, "hint": result.hint,
            "evidence": _jsonable(result.evidence)}


def to_contract(report: ExerciseReport) -> dict[str, Any]:
    """The JSON report of the course contract (extra keys inside check objects), plus
    `cleanup_problems` only when the grading could not remove something it created."""
    data: dict[str, Any] = {"exercise": report.exercise, "score": report.score,
                            "max_score": report.max_score, "checks": [check_to_dict(c) for c in report.checks]}
    if report.cleanup_problems:
        data["cleanup_problems"] = list(report.cleanup_problems)
    return data


def render_json(report: ExerciseReport) -> str:
    return json.dumps(to_contract(report), ensure_ascii=False)


def _indent(text: str, prefix: str) -> str:
    return textwrap.indent(text, prefix, lambda line: True)


def render_table(report: ExerciseReport, colour: bool = False) -> str:
    """The terminal table: each check, its points, its message, and the hint for each lost point."""
    width = max([len(c.id) for c in report.checks] + [5])
    lines = [f"{report.exercise} \u2014 {report.title}", f"workspace: {report.workspace}", ""]
    pad = " " * (2 + width + 2 + 4 + 2 + 7 + 2)
    for c in report.checks:
        mark = _MARK[c.status]
        if colour:
            mark = f"{_COLOUR[c.status]}{mark}{_RESET}"
        score = f"{points(c.points)}/{points(c.max_points)}"
        first, *rest = (c.message or "").splitlines() or [""]
        lines.append(f"  {c.id:<{width}}  {mark}  {score:>7}  {first}")
        if rest:
            lines.append(_indent("\n".join(rest), pad + "| "))
        if c.lost_points and c.hint:
            lines.append(_indent(textwrap.fill(c.hint, width=max(40, 100 - len(pad)),
                                               initial_indent="hint: ", subsequent_indent="      "), pad))
    lines.append("")
    lines.append(f"  {'total':<{width}}        {points(report.score) + '/' + points(report.max_score):>7}"
                 f"  ({report.duration_s:.1f} s)")
    if report.cleanup_problems:
        lines += ["", "the grading could not remove (not your doing; `make clean` removes it by label):"]
        lines += [f"  {problem}" for problem in report.cleanup_problems]
    return "\n".join(lines)


def render_summary(reports: Iterable[ExerciseReport], errors: Mapping[str, str] | None = None) -> str:
    """One line for `grade-all`."""
    reports = list(reports)
    errors = dict(errors or {})
    parts = [f"{r.exercise} {points(r.score)}/{points(r.max_score)}" for r in reports]
    parts += [f"{ex} not graded" for ex in errors]
    total = sum(r.score for r in reports)
    total_max = sum(r.max_score for r in reports)
    full = sum(1 for r in reports if r.full_marks)
    verdict = f"{full}/{len(reports) + len(errors)} exercises with full marks"
    return f"grade: {', '.join(parts)} \u2014 total {points(total)}/{points(total_max)}, {verdict}"


def render_for_cell(result: CheckResult) -> str:
    """What an autograded notebook cell prints (stdout only): verdict, message, hint."""
    lines = [f"{result.id}: {result.status.value}, {points(result.points)}/{points(result.max_points)} points",
             _indent(result.message, "  ")]
    if result.lost_points and result.hint:
        lines.append(_indent(textwrap.fill(result.hint, 96, initial_indent="hint: ",
                                           subsequent_indent="      "), "  "))
    return "\n".join(lines)


def render_checks_list(exercise: Exercise) -> str:
    """What an exercise grades: each check, its points and when it passes."""
    width = max(len(c.id) for c in exercise.checks)
    lines = [f"{exercise.id} \u2014 {exercise.title} ({points(exercise.max_score)} points; "
             f"you write: {', '.join(exercise.deliverables)})"]
    for c in exercise.checks:
        needs = f" [needs {', '.join(c.requires)}]" if c.requires else ""
        lines.append(f"  {c.id:<{width}}  {points(c.points):>3}  {c.summary}{needs}")
    return "\n".join(lines)
