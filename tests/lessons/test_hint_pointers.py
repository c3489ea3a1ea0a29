"""Does every grader hint point at a lesson section that exists?

A hint ends with "(see lessons/NN-topic.ipynb, section “Heading”)". A learner who follows it
must land on a markdown heading with exactly that text in that notebook.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from grader.registry import all_exercises

POINTER = re.compile(r"see (lessons/[\w.-]+\.ipynb), section \u201c(.+?)\u201d")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)


def _headings(path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {h for c in nb.cells if c.cell_type == "markdown" for h in HEADING.findall(c.source)}


def _checks():
    for exercise in all_exercises():
        for check in exercise.checks:
            yield pytest.param(exercise, check, id=f"{exercise.id}/{check.id}")


@pytest.mark.parametrize(("exercise", "check"), list(_checks()))
def test_hint_points_to_an_existing_section(exercise, check, repo_root):
    """Does the check's hint name its exercise's lesson, and a heading that lesson has?"""
    pointers = POINTER.findall(check.hint)
    assert pointers, f"the hint names no lesson section: {check.hint!r}"
    for notebook, section in pointers:
        path = repo_root / notebook
        assert path.is_file(), f"the hint points to {notebook}, which does not exist"
        headings = _headings(path)
        assert section in headings, (f"{notebook} has no heading “{section}”; its headings: "
                                     f"{sorted(headings)}")


def test_capstone_hints_point_to_the_production_lesson():
    """Are the capstone's hints sent to the lesson that teaches hardening, not to the GPU lesson?"""
    capstone = next(e for e in all_exercises() if e.id == "08-capstone")
    notebooks = {nb for c in capstone.checks for nb, _ in POINTER.findall(c.hint)}
    assert notebooks == {"lessons/09-production.ipynb"}, notebooks
