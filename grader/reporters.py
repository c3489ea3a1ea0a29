"""Render results. Nothing here decides anything: a report goes in, text comes out."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Iterable, Mapping

from grader import hints
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
    """The contract's keys first; then the evidence and the hint tiers shown (`hint` is the highest
    of them), which tier that is, and how many tiers the check has."""
    return {"id": result.id, "status": result.status.value, "points": float(result.points),
            "max_points": float(result.max_points), "message": result.message, "hint": result.hint,
            "evidence": _jsonable(result.evidence),
            "hints": [{"tier": n, "text": text} for n, text in hints.shown_tiers(result)],
            "hint_tier": result.shown if result.tiers else 0, "hint_tiers": len(result.tiers)}


def to_contract(report: ExerciseReport) -> dict[str, Any]:
    """The JSON report of the course contract (extra keys inside check objects), plus
    `cleanup_problems` only when the grading could not remove something it created, and `notices`
    only when it used something other than the learner's files (an image, a checkpoint)."""
    data: dict[str, Any] = {"exercise": report.exercise, "score": report.score,
                            "max_score": report.max_score, "checks": [check_to_dict(c) for c in report.checks]}
    if report.cleanup_problems:
        data["cleanup_problems"] = list(report.cleanup_problems)
    if report.notices:
        data["notices"] = list(report.notices)
    return data


def render_json(report: ExerciseReport) -> str:
    return json.dumps(to_contract(report), ensure_ascii=False)


def _indent(text: str, prefix: str) -> str:
    return textwrap.indent(text, prefix, lambda line: True)


def _hint_lines(result: CheckResult, width: int, most: int = hints.TIERS) -> list[str]:
    """The hint tiers shown for a lost point (or the one-text hint of a skipped check), wrapped."""
    if not result.lost_points:
        return []
    shown = hints.shown_tiers(result, most)
    if not shown:
        return [textwrap.fill(result.hint, width=width, initial_indent="hint: ",
                              subsequent_indent="      ")] if result.hint else []
    lines = []
    for n, text in shown:
        label = f"hint {n}/{len(result.tiers)}, {hints.TIER_NAMES[n]}: "
        lines.append(textwrap.fill(text, width=width, initial_indent=label, subsequent_indent="      ",
                                   break_on_hyphens=False, break_long_words=False))  # keep --flags whole
    return lines


def _evidence_lines(result: CheckResult, most: int = 6) -> list[str]:
    """What the grader found, one line per item (nbgrader feedback shows it with the hints)."""
    lines = []
    for key, value in list(result.evidence.items())[:most]:
        text = json.dumps(_jsonable(value), ensure_ascii=False) if not isinstance(value, str) else value
        text = text.replace("\n", " | ")
        lines.append(f"  {key}: {text if len(text) <= 160 else text[:157] + '...'}")
    return ["evidence:", *lines] if lines else []


def render_table(report: ExerciseReport, colour: bool = False, more: str | None = None) -> str:
    """The terminal table: each check, its points, its message, and the hints shown for each lost
    point; `more`: the line that says how to see every hint, shown where some are held back."""
    width = max([len(c.id) for c in report.checks] + [5])
    lines = [f"{report.exercise} \u2014 {report.title}", f"workspace: {report.workspace}",
             *(f"note: {notice}" for notice in report.notices), ""]
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
        lines += [_indent(text, pad) for text in _hint_lines(c, max(40, 100 - len(pad)))]
    lines.append("")
    lines.append(f"  {'total':<{width}}        {points(report.score) + '/' + points(report.max_score):>7}"
                 f"  ({report.duration_s:.1f} s)")
    if more and any(c.status is Status.FAILED and c.shown < len(c.tiers) for c in report.checks):
        lines += ["", more]
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
    """What an autograded notebook cell prints (stdout only), and so what nbgrader's feedback shows:
    verdict, message, the evidence of a failure and hint tiers 1-2, never the exact fix."""
    lines = [f"{result.id}: {result.status.value}, {points(result.points)}/{points(result.max_points)} points",
             _indent(result.message, "  ")]
    if result.status is Status.FAILED:
        lines += [_indent(text, "  ") for text in _evidence_lines(result)]
    lines += [_indent(text, "  ") for text in _hint_lines(result, 96, hints.FEEDBACK_TIERS)]
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
