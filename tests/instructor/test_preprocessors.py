"""The course's nbgrader preprocessors and how nbgrader scores what they produce (no engine)."""

from __future__ import annotations

from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from nbgrader.utils import determine_grade

from course.instructor import preprocessors as pp
from course.instructor.errors import UntrustedOutput
from course.instructor.sandbox import TrustedGrade


def grade_cell(source: str, grade_id: str, points: float = 2.0):
    return new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "grade_id": grade_id, "locked": True, "points": points,
        "schema_version": 3, "solution": False}})


def show_cell():
    return new_code_cell('from grader.notebook import show_file\nshow_file("01-first-image", "Dockerfile")')


# -- nbgrader's scoring: the form the grader's cells must take -----------------------------------
def test_a_numeric_result_is_partial_credit():
    """Does nbgrader read the number a cell returns as its score (partial credit)?"""
    cell = grade_cell("check_points(...)", "check_builds", points=2.0)
    cell.outputs = [new_output("stream", name="stdout", text="passed\n"),
                    new_output("execute_result", data={"text/plain": "1.5"}, execution_count=1)]
    assert determine_grade(cell) == (1.5, 2.0)


def test_anything_on_stderr_scores_zero():
    """Is a cell that writes to stderr worth 0, whatever it returns? (why the grader prints on stdout)"""
    cell = grade_cell("check_points(...)", "check_builds", points=2.0)
    cell.outputs = [new_output("stream", name="stderr", text="warning\n"),
                    new_output("execute_result", data={"text/plain": "2.0"}, execution_count=1)]
    assert determine_grade(cell) == (0, 2.0)


# -- autograde: what runs in the box and what comes back -----------------------------------------
def sample_notebook():
    return new_notebook(cells=[new_markdown_cell("# Exercise"), show_cell(),
                               new_code_cell("print('hi')"), grade_cell("check_points(...)", "check_builds")])


def test_the_box_runs_the_notebook_as_it_is():
    """Does the box get the notebook's cells unchanged (no cell writes a deliverable), the original untouched?"""
    nb = sample_notebook()
    runnable = pp.runnable_copy(nb)
    assert [c.source for c in runnable.cells] == [c.source for c in nb.cells]
    assert runnable is not nb and runnable.cells[1] is not nb.cells[1]


def executed_copy(runnable):
    executed = nbformat.from_dict(nbformat.reads(nbformat.writes(runnable), as_version=4))
    executed.cells[2].outputs = [new_output("stream", name="stdout", text="hi\n")]
    executed.cells[3].outputs = [new_output("execute_result", data={"text/plain": "2.0"}, execution_count=3)]
    return executed


def test_only_outputs_come_back():
    """Are the outputs merged into the instructor's notebook, its sources and metadata kept?"""
    nb = sample_notebook()
    runnable = pp.runnable_copy(nb)
    executed = executed_copy(runnable)
    executed.cells[3].metadata["nbgrader"]["points"] = 100  # a tampered copy cannot raise the stakes
    pp.merge_outputs(nb, runnable, executed)
    assert nb.cells[2].outputs[0]["text"] == "hi\n"
    assert nb.cells[3].metadata["nbgrader"]["points"] == 2.0
    assert determine_grade(nb.cells[3]) == (2.0, 2.0)


@pytest.mark.parametrize("tamper", ["source", "count", "output_type"])
def test_tampered_results_are_refused(tamper):
    """Is a notebook that comes back with other cells or non-outputs refused?"""
    nb = sample_notebook()
    runnable = pp.runnable_copy(nb)
    executed = executed_copy(runnable)
    if tamper == "source":
        executed.cells[3].source = "2.0"
    elif tamper == "count":
        executed.cells.append(new_code_cell("x"))
    else:
        executed.cells[2].outputs = [{"output_type": "shell", "text": "x"}]
    with pytest.raises(UntrustedOutput):
        pp.merge_outputs(nb, runnable, executed)


def test_a_cell_claiming_more_than_its_points_earns_nothing():
    """Does a cell returning more than its points score 0, instead of failing the whole autograde?"""
    nb = sample_notebook()
    runnable = pp.runnable_copy(nb)
    executed = executed_copy(runnable)
    executed.cells[3].outputs = [new_output("execute_result", data={"text/plain": "99.0"}, execution_count=3)]
    pp.merge_outputs(nb, runnable, executed)
    assert determine_grade(nb.cells[3]) == (0, 2.0)
    assert nb.cells[3].outputs[0]["ename"] == "OverClaim"


# What a check cell's grading can meet in the box: a kernel that died or ran out of processes
# (a fork bomb in run.sh) leaves the cell with its "grading ..." line and no result, or no output
# at all; a cell stopped by its time limit; a result that is not a number.
UNFINISHED = {
    "only the grading line": [new_output("stream", name="stdout", text="grading 02-storage ...\n")],
    "no output at all": [],
    "display, no result": [new_output("display_data", data={"text/plain": "<table>"})],
    "a result that is not a number": [new_output("execute_result", data={"text/plain": "'passed'"},
                                                 execution_count=3)],
}


@pytest.mark.parametrize("outputs", UNFINISHED.values(), ids=list(UNFINISHED))
def test_a_check_cell_without_verified_points_earns_nothing(outputs):
    """Does a check cell whose grading never stated its points score 0 (nbgrader would give it full
    credit), and say why?"""
    nb = sample_notebook()
    runnable = pp.runnable_copy(nb)
    executed = executed_copy(runnable)
    executed.cells[3].outputs = outputs
    assert determine_grade(executed.cells[3]) == (2.0, 2.0)  # what nbgrader alone would give
    pp.merge_outputs(nb, runnable, executed)
    assert determine_grade(nb.cells[3]) == (0, 2.0)
    assert nb.cells[3].outputs[-1]["ename"] == "Unverified"


def test_partial_points_stay_as_returned():
    """Is a check cell's stated partial credit kept as it is?"""
    nb = sample_notebook()
    runnable = pp.runnable_copy(nb)
    executed = executed_copy(runnable)
    executed.cells[3].outputs = [new_output("stream", name="stdout", text="failed\n"),
                                 new_output("execute_result", data={"text/plain": "0.0"}, execution_count=3)]
    pp.merge_outputs(nb, runnable, executed)
    assert determine_grade(nb.cells[3]) == (0.0, 2.0)
    assert all(o["output_type"] != "error" for o in nb.cells[3].outputs)


def test_a_notebook_that_could_not_run_earns_nothing():
    """Does every graded cell of a notebook the box could not run score 0?"""
    nb = sample_notebook()
    nb.cells[3].outputs = [new_output("execute_result", data={"text/plain": "2.0"}, execution_count=1)]
    pp.mark_not_executed(nb, "the box timed out")
    assert determine_grade(nb.cells[3]) == (0, 2.0)
    assert "the box timed out" in nb.cells[3].outputs[0]["evalue"]


# -- the trusted cross-check ------------------------------------------------------------------------
def trusted(points: dict[str, float] | None, error: str | None = None) -> TrustedGrade:
    report = None if points is None else {
        "exercise": "01-first-image", "score": sum(points.values()), "max_score": 10.0,
        "checks": [{"id": k, "status": "passed" if v else "failed", "points": v} for k, v in points.items()]}
    return TrustedGrade(report, error, 1.0)


@pytest.mark.parametrize("claimed, allowed, expected, action", [
    (2.0, 2.0, 2.0, "kept"),
    (2.0, 0.0, 0.0, "lowered"),
    (None, 1.0, 1.0, "lowered"),
    (0.0, 2.0, 0.0, "notebook gave less: review"),
])
def test_a_cell_counts_the_lower_of_notebook_and_grader(claimed, allowed, expected, action):
    """Does a cell count min(notebook, trusted), and is every difference flagged?"""
    grade = SimpleNamespace(auto_score=claimed, needs_manual_grade=False)
    cell = grade_cell("check_points(...)", "check_builds")
    verdict = pp.TrustedCrossCheck._reconcile(cell, grade, "check_builds", trusted({"builds": allowed}))
    assert grade.auto_score == expected and verdict["action"] == action
    assert any("trusted re-grading" in o.get("text", "") for o in cell.outputs) == (action == "lowered")


def test_a_grading_that_could_not_finish_counts_zero():
    """Does a cell score 0, and ask for review, when the trusted grading failed (fail closed)?"""
    grade = SimpleNamespace(auto_score=2.0, needs_manual_grade=False)
    cell = grade_cell("check_points(...)", "check_builds")
    verdict = pp.TrustedCrossCheck._reconcile(cell, grade, "check_builds", trusted(None, "BoxTimeout: ..."))
    assert (grade.auto_score, grade.needs_manual_grade) == (0.0, True)
    assert verdict["action"].startswith("trusted grading failed") and "BoxTimeout" in cell.outputs[-1]["text"]


def test_cells_that_are_not_checks_are_not_touched():
    """Is a grade cell that is not a grader check (no check_ prefix) left to nbgrader?"""
    grade = SimpleNamespace(auto_score=1.0, needs_manual_grade=False)
    verdict = pp.TrustedCrossCheck._reconcile(grade_cell("x", "essay"), grade, "essay", trusted({}))
    assert grade.auto_score == 1.0 and verdict["action"] == "not a grader check"


# -- feedback -----------------------------------------------------------------------------------------
def test_feedback_shows_messages_not_hidden_code():
    """Are hidden test lines removed, and tracebacks of such cells cut to their last line?"""
    cell = grade_cell("from grader.notebook import check_points\n### BEGIN HIDDEN TESTS\n"
                      "secret_hidden_call()\n### END HIDDEN TESTS\ncheck_points('01-first-image', 'builds')",
                      "check_builds")
    cell.outputs = [new_output("stream", name="stdout", text="builds: failed -- the build failed\n"),
                    new_output("error", ename="NameError", evalue="name is not defined",
                               traceback=["----> 3 secret_hidden_call()", "NameError: name is not defined"])]
    out, _ = pp.HideHiddenTests().preprocess_cell(cell, {}, 0)
    text = out.source + str(out.outputs)
    assert "secret_hidden_call" not in text and "HIDDEN TESTS" not in text
    assert "builds: failed -- the build failed" in text
    assert out.outputs[1]["traceback"] == ["NameError: name is not defined"]
