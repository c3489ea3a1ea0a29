"""The versions of an exercise notebook the tests run: what `make lab` opens (the learner
notebook in exercises/), nbgrader's source generated from it and the reference solutions
(course/instructor/source.py), and the released version nbgrader makes from that source."""

from __future__ import annotations

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from course.instructor import source
from grader.options import REPO_ROOT

EXERCISES = ("01-first-image", "02-storage", "03-permissions", "04-networking",
             "05-compose", "06-optimize", "07-gpu", "08-capstone")


def notebook_path(exercise_id: str):
    return REPO_ROOT / "exercises" / exercise_id / f"{exercise_id}.ipynb"


def lab(exercise_id: str) -> nbformat.NotebookNode:
    return nbformat.read(notebook_path(exercise_id), as_version=4)


def instructor(exercise_id: str) -> nbformat.NotebookNode:
    return source.source_notebook(lab(exercise_id), exercise_id)


def released(exercise_id: str) -> nbformat.NotebookNode:
    """As generate_assignment releases it (its ClearSolutions stub is nbgrader_config.py's)."""
    nb, _ = ClearSolutions(code_stub={"python": source.RELEASED_STUB}).preprocess(instructor(exercise_id), {})
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    return nb


VERSIONS = {"lab": lab, "released": released}
