"""Does every lesson ask the learner to think before it shows, and show commands as they are typed?"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from course.manifest import load

ROOT = Path(__file__).resolve().parents[2]
ACTIVE = re.compile(r"self_check\(.*title=\"(Predict|Your turn)\"", re.S)
# A command built with the labels inline is echoed with them: `sh(f"docker run {L.flags} ...")`;
# a helper that splices them in behind the scenes is what `L.sh` (sh(..., labels=...)) already does.
LABELS_ECHOED = re.compile(r"\bsh\(f?\"[^\"]*\{L\.flags\}")
LABELS_SPLICED = re.compile(r"\{L\.flags\}")


def _code_cells(lesson):
    nb = nbformat.read(ROOT / lesson.notebook, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("lesson", load().lessons, ids=lambda lesson: lesson.slug)
def test_lesson_has_a_predict_or_your_turn_cell_before_its_answer(lesson):
    """Has the lesson a "Predict" or "Your turn" self-check that explains its answer, followed by
    a cell that runs what it asked about (so it is not the closing quiz)?"""
    cells = _code_cells(lesson)
    active = [n for n, source in enumerate(cells) if ACTIVE.search(source)]
    assert active, f"{lesson.notebook} has no self_check(..., title=\"Predict\" or \"Your turn\")"
    assert any(n < len(cells) - 2 for n in active), f"{lesson.notebook}: its only predict cell comes at the end"


@pytest.mark.parametrize("lesson", load().lessons, ids=lambda lesson: lesson.slug)
def test_lesson_echoes_commands_without_the_clean_up_labels(lesson):
    """Does no cell print a command with the course's --label flags, which a learner would not type?"""
    for source in _code_cells(lesson):
        match = LABELS_ECHOED.search(source)
        assert not match, f"{lesson.notebook}: {match.group(0)}"


@pytest.mark.parametrize("lesson", load().lessons, ids=lambda lesson: lesson.slug)
def test_lesson_adds_its_labels_through_the_kit_not_an_inline_helper(lesson):
    """Does no cell splice L.flags into a command itself (L.sh and build_live(labels=...) add them unseen)?"""
    for source in _code_cells(lesson):
        match = LABELS_SPLICED.search(source)
        assert not match, f"{lesson.notebook} splices {match.group(0)} into a command: use L.sh(...)"


def test_the_label_detector_catches_an_echoed_label():
    """Is the old way of writing a lesson command caught?"""
    assert LABELS_ECHOED.search('sh(f"docker run --rm {L.flags} python:3.11-slim id")')
    assert not LABELS_ECHOED.search('run("docker run --rm python:3.11-slim id")')
    assert LABELS_SPLICED.search('labelled = labelled.replace(verb, f"{verb}{L.flags} ")')
    assert not LABELS_SPLICED.search('print("also carries:", L.flags)')
