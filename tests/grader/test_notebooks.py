"""Exercise notebooks: valid nbformat, consistent nbgrader metadata, one autograded cell per check,
and solution regions that match solutions/ (the one source of the reference answers)."""

from __future__ import annotations

import re

import nbformat
import pytest

from grader import registry
from grader.options import REPO_ROOT

EXERCISES = ["01-first-image", "02-storage", "03-permissions", "04-networking"]


def load(exercise_id):
    return nbformat.read(REPO_ROOT / "exercises" / exercise_id / f"{exercise_id}.ipynb", as_version=4)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_notebook_is_valid_with_consistent_nbgrader_metadata(exercise_id):
    """Is the notebook valid, with unique grade_ids, points only on graded cells, and paired markers?"""
    nb = load(exercise_id)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.language == "python"
    meta = [c.metadata.nbgrader for c in nb.cells if "nbgrader" in c.metadata]
    ids = [m["grade_id"] for m in meta]
    assert len(ids) == len(set(ids)), "grade_id must be unique"
    for cell in nb.cells:
        m = cell.metadata.get("nbgrader")
        source = cell.source
        assert source.count("### BEGIN SOLUTION") == source.count("### END SOLUTION")
        assert source.count("### BEGIN HIDDEN TESTS") == source.count("### END HIDDEN TESTS")
        if m is None:
            assert "### BEGIN" not in source, "marked regions need nbgrader metadata"
            continue
        assert m["schema_version"] == 3
        if "### BEGIN SOLUTION" in source:
            assert m["solution"] is True
        if "### BEGIN HIDDEN TESTS" in source:
            assert m["grade"] is True and m["solution"] is False
        if m["grade"]:
            assert m["points"] > 0 and m["locked"] is True
        else:
            assert "points" not in m or not m["points"]


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_one_autograded_cell_per_check_worth_its_points(exercise_id):
    """Does every check have exactly one graded cell, with the check's points, ending in check_points(...)?"""
    nb = load(exercise_id)
    exercise = registry.get(exercise_id)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    calls = {}
    for cell in graded:
        last = cell.source.strip().splitlines()[-1]
        m = re.fullmatch(r'check_points\("([\w-]+)", "(\w+)"\)', last)
        assert m and m.group(1) == exercise_id, f"the last line must be the points: {last!r}"
        calls[m.group(2)] = cell.metadata.nbgrader["points"]
    assert calls == {c.id: c.points for c in exercise.checks}
    assert sum(calls.values()) == exercise.max_score


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_lab_notebook_holds_no_solution_and_writes_no_file(exercise_id):
    """Does the notebook `make lab` opens hold no solution region, no hidden test and no %%writefile,
    and show each deliverable (read-only, with a link to the editor) instead?"""
    nb = load(exercise_id)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "forget()" not in text
    assert "%%writefile" not in text and "open(" not in text
    shown = re.findall(rf'show_file\("{exercise_id}", "([^"]+)"\)', text)
    assert sorted(shown) == sorted(registry.get(exercise_id).deliverables)
    for name in registry.get(exercise_id).deliverables:
        reference = (REPO_ROOT / "solutions" / exercise_id / name).read_text()
        assert reference.strip().splitlines()[-1] not in text


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_generated_source_quotes_the_reference_solution(exercise_id):
    """Does the nbgrader source generated at release quote exactly the files in solutions/<id>/?"""
    from tests.grader.notebook_versions import instructor
    quoted = {}
    for cell in instructor(exercise_id).cells:
        m = re.search(r'show_file\("[\w-]+", "([^"]+)"\)\n### BEGIN SOLUTION\n#[^\n]*\n(.*)### END SOLUTION',
                      cell.source, re.S)
        if m:
            assert cell.metadata.nbgrader["solution"] is True
            quoted[m.group(1)] = "".join(line[2:] + "\n" for line in m.group(2).splitlines())
    assert set(quoted) == set(registry.get(exercise_id).deliverables)
    for name, text in quoted.items():
        reference = (REPO_ROOT / "solutions" / exercise_id / name).read_text()
        assert text.rstrip("\n") == reference.rstrip("\n")


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_student_version_keeps_no_solution_and_no_hidden_test(exercise_id):
    """Does nbgrader's own preprocessing of the generated source strip the solution and hidden tests
    and keep the graded calls?"""
    from tests.grader.notebook_versions import instructor, released
    assert "forget()" in "\n".join(c.source for c in instructor(exercise_id).cells)
    text = "\n".join(c.source for c in released(exercise_id).cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "forget()" not in text
    reference = (REPO_ROOT / "solutions" / exercise_id / registry.get(exercise_id).deliverables[0]).read_text()
    assert reference.strip().splitlines()[-1] not in text
    assert text.count("check_points(") == len(registry.get(exercise_id).checks)
