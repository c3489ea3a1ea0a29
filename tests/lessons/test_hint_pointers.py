"""Does every grader hint, and every link in a lesson, point at a section that exists?

A check's first hint tier (the concept, grader.hints) ends with "(see lessons/NN-topic.ipynb,
section “Heading”)". A learner who follows it must land on a markdown heading with exactly that
text in that notebook.
"""

from __future__ import annotations

import re

from pathlib import Path

import nbformat
import pytest

from course.manifest import load as load_course
from grader.registry import all_exercises

ROOT = Path(__file__).resolve().parents[2]

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
    """Does the check's first hint tier name its exercise's lesson, and a heading that lesson has?"""
    concept = check.tiers.concept
    pointers = POINTER.findall(concept)
    assert pointers, f"tier 1 names no lesson section: {concept!r}"
    assert concept.endswith(f"({exercise.see(pointers[-1][1])})"), "the pointer ends tier 1"
    for notebook, section in pointers:
        path = repo_root / notebook
        assert path.is_file(), f"the hint points to {notebook}, which does not exist"
        headings = _headings(path)
        assert section in headings, (f"{notebook} has no heading “{section}”; its headings: "
                                     f"{sorted(headings)}")


def test_capstone_hints_point_to_the_production_lesson():
    """Are the capstone's hints sent to the lesson that teaches hardening, not to the GPU lesson?"""
    capstone = next(e for e in all_exercises() if e.id == "08-capstone")
    notebooks = {nb for c in capstone.checks for nb, _ in POINTER.findall(c.tiers.concept)}
    assert notebooks == {"lessons/09-production.ipynb"}, notebooks


LINK = re.compile(r"\]\(((?:\.\./)?[\w./-]*?)(?:#([^)\s]+))?\)")


def _anchors(path) -> set[str]:
    """JupyterLab's anchor of a heading: its rendered text with spaces as dashes."""
    return {re.sub(r"[`*]", "", h).replace(" ", "-") for h in _headings(path)}


def _lesson_links():
    for lesson in load_course().lessons:
        nb = nbformat.read(ROOT / lesson.notebook, as_version=4)
        for n, cell in enumerate(nb.cells):
            if cell.cell_type != "markdown":
                continue
            for target, anchor in LINK.findall(cell.source):
                if target.startswith("http"):
                    continue
                yield pytest.param(lesson.notebook, n, target, anchor, id=f"{lesson.slug}-{n}-{target}#{anchor}")


@pytest.mark.parametrize(("notebook", "cell", "target", "anchor"), list(_lesson_links()))
def test_lesson_link_lands_on_a_heading(notebook, cell, target, anchor):
    """Does each link in a lesson (to a notebook, an exercise, or a heading) land where it says?"""
    here = (ROOT / notebook).parent
    path = here / target if target else ROOT / notebook
    assert path.exists(), f"{notebook}, cell {cell}: {target} does not exist"
    if anchor and path.suffix == ".ipynb":
        assert anchor in _anchors(path), f"{notebook}, cell {cell}: {path.name} has no heading #{anchor}"


def test_the_recap_covers_the_chapters_twelve_points():
    """Does the capstone's lesson end the chapter with its 12 key points, each linked to a lesson?
    (Lesson 10 goes beyond the chapter: one host to several.)"""
    last = next(lesson for lesson in load_course().lessons if any(e.id == "08-capstone" for e in lesson.exercises))
    nb = nbformat.read(ROOT / last.notebook, as_version=4)
    recap = next(c.source for c in nb.cells if "## The chapter's 12 key points" in c.source)
    table = recap[recap.index("## The chapter's 12 key points"):].split("\n## ")[0]
    rows = [line for line in table.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert [int(r.split("|")[1]) for r in rows] == list(range(1, 13))
    assert all(".ipynb#" in r for r in rows), [r for r in rows if ".ipynb#" not in r]
