"""Exercise notebooks 05-08: valid nbgrader metadata, one graded cell per counted check, no solution in
what `make lab` opens, and a generated nbgrader source whose solution regions quote the service's own
files (their one source, grader.workspace.SOLUTION_FILES)."""

from __future__ import annotations

import re

import nbformat
import pytest

from grader import registry
from grader.exercises.gpu import HOST_DEPENDENT
from grader.workspace import STARTS_FROM, checkpoint, solution_dir, solution_sources, starter_dir
from tests.grader.notebook_versions import instructor, notebook_path, released

EXERCISES = ("05-compose", "06-optimize", "07-gpu", "08-capstone")

CALL = re.compile(r'check_points\("([\w-]+)", "(\w+)"\)')


def load(exercise_id):
    return nbformat.read(notebook_path(exercise_id), as_version=4)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_notebook_is_valid_with_consistent_nbgrader_metadata(exercise_id):
    """Valid, no outputs, unique grade_ids, points only on locked graded cells, paired markers?"""
    nb = load(exercise_id)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    ids = [c.metadata.nbgrader["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids))
    for cell in nb.cells:
        m = cell.metadata.get("nbgrader")
        for marker in ("SOLUTION", "HIDDEN TESTS"):
            assert cell.source.count(f"### BEGIN {marker}") == cell.source.count(f"### END {marker}")
        if m is None:
            assert "### BEGIN" not in cell.source
            continue
        assert m["schema_version"] == 3
        assert ("### BEGIN SOLUTION" in cell.source) == m["solution"]
        if "### BEGIN HIDDEN TESTS" in cell.source:
            assert m["grade"] and not m["solution"]
        if m["grade"]:
            assert m["points"] > 0 and m["locked"]
        else:
            assert not m.get("points")


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_one_graded_cell_per_counted_check(exercise_id):
    """Does each check have one cell ending in check_points(...), graded with the check's points, except
    the checks a host may not be able to evaluate (not counted there, so not graded)?"""
    nb = load(exercise_id)
    exercise = registry.get(exercise_id)
    graded, informational = {}, set()
    for cell in nb.cells:
        last = cell.source.strip().splitlines()[-1] if cell.source.strip() else ""
        m = CALL.fullmatch(last)
        if not m:
            continue
        assert m.group(1) == exercise_id
        meta = cell.metadata.nbgrader
        if meta["grade"]:
            graded[m.group(2)] = meta["points"]
        else:
            informational.add(m.group(2))
    counted = {c.id: c.points for c in exercise.checks if c.id not in HOST_DEPENDENT}
    assert graded == counted
    assert informational == {c.id for c in exercise.checks} & HOST_DEPENDENT


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_generated_source_quotes_the_service_files(exercise_id):
    """Does the nbgrader source generated at release quote, for each deliverable, exactly the service's
    file it stands for, while the notebook `make lab` opens holds none of it?"""
    quoted = {}
    for cell in instructor(exercise_id).cells:
        m = re.search(r'show_file\("[\w-]+", "([^"]+)"\)\n### BEGIN SOLUTION\n#[^\n]*\n(.*)### END SOLUTION',
                      cell.source, re.S)
        if m:
            quoted[m.group(1)] = "".join(line[2:] + "\n" for line in m.group(2).splitlines())
    sources = solution_sources(exercise_id)
    assert set(quoted) == set(registry.get(exercise_id).deliverables) == set(sources)
    for name, text in quoted.items():
        assert text.rstrip("\n") == sources[name].read_text().rstrip("\n")
    lab_text = "\n".join(c.source for c in load(exercise_id).cells)
    assert "BEGIN SOLUTION" not in lab_text and "%%writefile" not in lab_text and "forget()" not in lab_text


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_student_version_keeps_no_solution_and_no_hidden_test(exercise_id):
    text = "\n".join(c.source for c in released(exercise_id).cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "forget()" not in text
    for source in solution_sources(exercise_id).values():
        distinctive = max(source.read_text().splitlines(), key=len)
        assert distinctive not in text
    assert text.count("check_points(") == len(registry.get(exercise_id).checks)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_starter_and_solution_pointer(exercise_id):
    """Has the starter every deliverable (differing from the reference), and does solutions/<id>/ point
    at the service's files instead of copying them?"""
    for name, source in solution_sources(exercise_id).items():
        # a file that continues an earlier exercise starts from the learner's own, else its checkpoint
        starter = (checkpoint(exercise_id, name) if name in STARTS_FROM.get(exercise_id, {})
                   else starter_dir(exercise_id) / name)
        assert starter.is_file() and starter.read_text() != source.read_text()
        assert not (solution_dir(exercise_id) / name).exists(), "the reference lives in service/ only"
    readme = (solution_dir(exercise_id) / "README.md").read_text()
    assert all(f"service/{name}" in readme for name in solution_sources(exercise_id))


@pytest.mark.docker
def test_gpu_notebook_earns_every_counted_point(tmp_path, monkeypatch, docker_client):
    """Run 07's instructor version top to bottom on the reference files: do the graded cells earn all
    their points, on stdout only, and does the GPU cell report without being graded?"""
    from nbclient import NotebookClient
    from nbgrader.utils import determine_grade, is_grade

    from grader.workspace import materialize

    monkeypatch.setenv("COURSE_WIDGETS", "plain")
    try_tag = "genai-course/exercise-07:try-cpu"
    existed = bool(docker_client.images.list(name=try_tag))
    nb = instructor("07-gpu")
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                       resources={"metadata": {"path": str(materialize("07-gpu", tmp_path / "ws", with_solution=True))}}).execute()
    finally:
        if not existed and docker_client.images.list(name=try_tag):
            docker_client.images.remove(try_tag)
    earned = {c.metadata.nbgrader["grade_id"]: determine_grade(c) for c in nb.cells if is_grade(c)}
    assert earned and all(score == top for score, top in earned.values()), earned
    for cell in nb.cells:
        if is_grade(cell) or "check_points(" in cell.source:
            assert all(o.get("name") != "stderr" for o in cell.outputs)
    gpu_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "check_cuda_provider")
    assert "cuda_provider:" in "".join(o.get("text", "") for o in gpu_cell.outputs)
