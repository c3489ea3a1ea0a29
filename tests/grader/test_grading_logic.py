"""Check registration, prerequisites and how a check's outcome becomes a result (no engine needed)."""

from __future__ import annotations

import pytest

from grader import registry
from grader.errors import CheckFailed, EngineUnavailable, GraderBug, ModelMissing, UnknownExercise
from grader.grading import run_checks
from grader.registry import Exercise, fail, passed
from grader.results import CheckResult, ExerciseReport, Status


def make_exercise(**outcomes) -> Exercise:
    """An exercise of the course whose checks are replaced by scripted ones."""
    exercise = Exercise("01-first-image")
    exercise.checks = []
    return exercise


def scripted(exercise, check_id, outcome, requires=(), points=1):
    def run(ctx):
        ctx.append(check_id)
        if isinstance(outcome, BaseException):
            raise outcome
        return passed(f"{check_id} ok", detail=1) if outcome else fail(f"{check_id} broke", where="x")
    exercise.check(check_id, points=points, summary=check_id, hint=f"fix {check_id}", section="S",
                   requires=requires)(run)


def test_prerequisites_skip_and_say_which():
    """Is a check whose prerequisite failed skipped, with a message naming the prerequisite?"""
    ex = make_exercise()
    scripted(ex, "builds", False, points=2)
    scripted(ex, "static", True)
    scripted(ex, "runs", True, requires=("builds",))
    scripted(ex, "deep", True, requires=("runs",))
    calls: list[str] = []
    results = {r.id: r for r in run_checks(ex.checks, calls)}
    assert calls == ["builds", "static"]
    assert results["builds"].status is Status.FAILED and results["builds"].points == 0
    assert results["static"].status is Status.PASSED and results["static"].points == 1
    assert results["runs"].status is Status.SKIPPED
    assert results["runs"].message == "skipped: needs builds, which failed"
    assert results["deep"].message == "skipped: needs runs, which skipped"


def test_failure_carries_message_hint_evidence_and_notes():
    ex = make_exercise()

    def run(ctx):
        raise CheckFailed("expected a, found b", {"found": "b"}, notes=("(hadolint DL3007 (line 1): x)",))
    ex.check("one", points=1, summary="s", concept="why a", problem=("found {found}", "none found"),
             fix="do a", section="Sec")(run)
    (result,) = run_checks(ex.checks, None)
    assert result.message == "expected a, found b"
    concept, problem, fix = result.tiers
    assert concept == "why a (see lessons/02-images-and-layers.ipynb, section \u201cSec\u201d)"
    assert problem == "found b (hadolint DL3007 (line 1): x)"  # from the evidence, lint findings added
    assert fix == "do a"
    assert (result.shown, result.hint) == (2, problem)  # grade() shows tiers 1-2; hint is the highest shown
    assert result.evidence == {"found": "b"}


def test_environment_problems_stop_the_grading():
    """Does an environment problem inside a check propagate (exit 2) instead of failing the check?"""
    ex = make_exercise()
    scripted(ex, "one", ModelMissing("no model"))
    with pytest.raises(ModelMissing):
        run_checks(ex.checks, [])


def test_a_crashing_check_is_a_grader_bug_not_a_learner_failure():
    ex = make_exercise()
    scripted(ex, "one", ZeroDivisionError("boom"))
    with pytest.raises(GraderBug, match="check one crashed: ZeroDivisionError"):
        run_checks(ex.checks, [])


def test_lost_connection_is_an_engine_problem():
    import requests.exceptions
    ex = make_exercise()
    scripted(ex, "one", requests.exceptions.ConnectionError("gone"))
    with pytest.raises(EngineUnavailable):
        run_checks(ex.checks, [])


def test_registration_rules():
    """Are duplicate checks, unknown prerequisites and exercises missing from course.yaml refused?"""
    ex = make_exercise()
    scripted(ex, "a", True)
    with pytest.raises(ValueError, match="registered twice"):
        scripted(ex, "a", True)
    with pytest.raises(ValueError, match="must be registered before"):
        scripted(ex, "b", True, requires=("later",))
    with pytest.raises(ValueError, match="not in course.yaml"):
        Exercise("99-nothing")
    with pytest.raises(UnknownExercise, match="no exercise 'nope'"):
        registry.get("nope")


def test_results_are_frozen_and_report_totals():
    r1 = CheckResult("a", "passed", 2.0, 2.0, "ok")
    r2 = CheckResult("b", Status.FAILED, 0.0, 1.0, "no", "hint", {"k": [1]})
    with pytest.raises(AttributeError):
        r1.points = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        r2.evidence["k"] = 2  # type: ignore[index]
    report = ExerciseReport("01-first-image", "t", "ws", (r1, r2))
    assert (report.score, report.max_score, report.full_marks) == (2.0, 3.0, False)
    assert report.check("b") is r2


@pytest.mark.parametrize("exercise_id, checks", [
    ("01-first-image", ["builds", "pinned_base", "slim_base", "exposes_port", "exec_form", "serves_http",
                        "no_pip_cache", "deps_before_code"]),
    ("02-storage", ["runs", "named_volume", "data_persists", "tmpfs_cache", "models_read_only",
                    "localhost_only"]),
    ("03-permissions", ["builds", "non_root", "user_ids", "no_login_shell", "code_read_only", "data_writable",
                        "serves_http"]),
    ("04-networking", ["user_defined_bridge", "service_attached", "dns_by_name", "localhost_only",
                       "isolated_batch"]),
])
def test_every_contract_check_is_registered(exercise_id, checks):
    """Does each exercise register every check id of the contract, each worth points?"""
    exercise = registry.get(exercise_id)
    ids = [c.id for c in exercise.checks]
    assert set(checks) <= set(ids)
    assert all(c.points > 0 and c.hint and c.summary for c in exercise.checks)
    assert exercise.max_score == 10


def test_hints_point_at_sections_that_exist_in_the_lessons():
    """Does every hint name a lesson notebook and a heading that the notebook really has?"""
    import json
    import re

    from grader.options import REPO_ROOT
    for exercise in registry.all_exercises():
        lesson = REPO_ROOT / exercise.lesson_path
        if not lesson.exists():
            continue  # the lesson is written by its own issue; the hint names its future path
        headings = {line.lstrip("#").strip() for cell in json.loads(lesson.read_text())["cells"]
                    if cell["cell_type"] == "markdown" for line in "".join(cell["source"]).splitlines()
                    if line.startswith("#")}
        for check in exercise.checks:
            section = re.search(r"section \u201c(.+?)\u201d", check.tiers.concept).group(1)
            assert section in headings, f"{exercise.id}/{check.id}: no heading {section!r} in {lesson.name}"
