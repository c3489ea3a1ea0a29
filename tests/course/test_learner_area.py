"""What a learner's lab serves: the lessons and the exercise workspaces, never an answer.

`make lab` serves the learner area (course.lab.learner_area): links to lessons/ and
exercises/ only. Nothing in it holds a solution region, a hidden test, or five
consecutive lines of a reference solution; the solutions, the grader, the tests and
nbgrader's source cannot be reached through the server.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course.lab import LabError, LabServer, free_port, learner_area
from course.manifest import load as load_course
from dockerkit.http import http

ROOT = Path(__file__).resolve().parents[2]
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS")
RUN = 5  # consecutive non-trivial lines of a reference that count as handing out the answer


def served_files(area: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(area, followlinks=True):
        dirs[:] = [d for d in dirs if d not in (".ipynb_checkpoints", "__pycache__")]
        found += [Path(root, name) for name in files]
    return found


def nontrivial(text: str) -> list[str]:
    """The lines that say something: not blank, not a lone bracket or comment marker."""
    return [s for s in (line.strip() for line in text.splitlines()) if len(s) > 3 and s not in ("```", "---")]


def references() -> dict[str, list[str]]:
    """{reference file: its non-trivial lines}: solutions/ and the service files that are answers."""
    course = load_course()
    found = {}
    for ex in course.exercises:
        folder = course.path(ex.solution)
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.name in ex.deliverables:
                found[str(path.relative_to(ROOT))] = nontrivial(path.read_text())
        for source in ex.solution_files.values():
            found[source] = nontrivial((ROOT / source).read_text())
    return found


def quotes(text: str, reference: list[str]) -> bool:
    lines = nontrivial(text)
    runs = {tuple(reference[i:i + RUN]) for i in range(len(reference) - RUN + 1)}
    return any(tuple(lines[i:i + RUN]) in runs for i in range(len(lines) - RUN + 1))


def shared_checkpoints() -> set[Path]:
    """What a workspace is given rather than written: the service's code course.yaml copies in
    (`shared`), and the checkpoints a file starts from when the learner has no earlier file of theirs."""
    course = load_course()
    shared = {(ROOT / ex.workspace / rel).resolve() for ex in course.exercises for rel in ex.shared}
    return shared | {(course.path(ex.checkpoint) / rel).resolve() for ex in course.exercises
                     for rel in ex.starts_from}


def test_the_learner_area_links_lessons_and_exercises_only(tmp_path):
    """Does the area hold exactly the two links, and is a learner's own file of that name never replaced?"""
    area = learner_area(tmp_path / "area", repo=ROOT)
    assert sorted(p.name for p in area.iterdir()) == ["exercises", "lessons"]
    assert all((area / name).resolve() == ROOT / name for name in ("exercises", "lessons"))
    assert learner_area(tmp_path / "area", repo=ROOT) == area  # again: nothing changes
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "lessons").write_text("my notes\n")
    with pytest.raises(LabError, match="not the course's to replace"):
        learner_area(mine, repo=ROOT)
    assert (mine / "lessons").read_text() == "my notes\n"


def test_nothing_served_holds_a_solution_or_a_hidden_test():
    """Does `grep -r "BEGIN SOLUTION"` (and the hidden-test marker) find nothing the learner's lab serves,
    and does no served file quote 5 lines of a reference solution, the given checkpoints aside?"""
    files = served_files(learner_area())
    assert any(p.suffix == ".ipynb" for p in files)
    refs, checkpoints = references(), shared_checkpoints()
    for path in files:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        assert not any(marker in text for marker in MARKERS), path
        if path.resolve() in checkpoints:
            continue
        for name, lines in refs.items():
            assert not quotes(text, lines), f"{path} quotes {name}"


def test_no_given_checkpoint_is_an_earlier_answer():
    """Does no workspace start from a file that is the answer to another exercise?"""
    refs = references()
    checked = 0
    for path in shared_checkpoints():
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and "__pycache__" not in file.parts:
                text = file.read_text()
                assert not any(quotes(text, lines) for lines in refs.values()), file
                checked += 1
    assert checked >= len(load_course().exercises)


def test_the_server_reaches_no_solution_grader_or_test():
    """Through the learner's lab, are solutions/, grader/, tests/ and source/ out of reach?"""
    with LabServer(port=free_port(), root=learner_area()) as lab:
        def status(path: str) -> int:
            return http("GET", f"{lab.base_url}/api/contents/{path}?token={lab.token}", timeout=10).status
        assert status("exercises/01-first-image/01-first-image.ipynb") == 200
        for path in ("solutions", "grader", "tests", "source", "service", "../solutions", "..%2Fsolutions"):
            assert status(path) in (400, 403, 404), path
