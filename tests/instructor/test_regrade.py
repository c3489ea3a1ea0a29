"""`make regrade`: grade again with the current grader in a scratch copy of the gradebook, print per
student and check what changes, write nothing unless confirmed. Without an engine: autograde is a
fake that changes the grades of whichever course folder it is pointed at, as a new grader would."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course.instructor import __main__ as cli
from course.instructor import settings, workflow

EXERCISE = "01-first-image"
CHECKS = {"check_builds": 2.0, "check_small": 1.0}


def make_gradebook(root: Path, scores: dict[tuple[str, str], float], statuses: dict[tuple[str, str], str]) -> None:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", settings.COURSE_ID) as gb:
        gb.add_assignment(EXERCISE)
        gb.add_notebook(EXERCISE, EXERCISE)
        for name, points in CHECKS.items():
            gb.add_grade_cell(name, EXERCISE, EXERCISE, max_score=points, cell_type="code")
        for student in sorted({s for s, _ in scores}):
            gb.add_student(student)
            gb.add_submission(EXERCISE, student)
    set_scores(root, scores, statuses)


def set_scores(root: Path, scores: dict[tuple[str, str], float], statuses: dict[tuple[str, str], str]) -> None:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", settings.COURSE_ID) as gb:
        for (student, check), points in scores.items():
            gb.find_grade(check, EXERCISE, EXERCISE, student).auto_score = points
        gb.db.commit()
    for student in {s for s, _ in statuses}:
        folder = root / "autograded" / student / EXERCISE
        folder.mkdir(parents=True, exist_ok=True)
        checks = [{"id": c.removeprefix("check_"), "status": st} for (s, c), st in statuses.items() if s == student]
        (folder / "trusted-grade.json").write_text(json.dumps({"report": {"checks": checks}}))


OLD = {("alice", "check_builds"): 2.0, ("alice", "check_small"): 1.0,
       ("bob", "check_builds"): 2.0, ("bob", "check_small"): 0.0}
OLD_STATUS = {("alice", "check_builds"): "passed", ("alice", "check_small"): "passed",
              ("bob", "check_builds"): "passed", ("bob", "check_small"): "failed"}
# the new grader finds that bob's image does not build after all
NEW = {**OLD, ("bob", "check_builds"): 0.0}
NEW_STATUS = {**OLD_STATUS, ("bob", "check_builds"): "failed"}


@pytest.fixture
def course(tmp_path, monkeypatch):
    root = tmp_path / "course"
    # nbgrader creates a gradebook with `alembic`, from PATH: this environment's
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for folder in ("exercises", f"source/{EXERCISE}", f"submitted/alice/{EXERCISE}", f"submitted/bob/{EXERCISE}"):
        (root / folder).mkdir(parents=True)
    (root / f"submitted/bob/{EXERCISE}/Dockerfile").write_text("FROM python:3.11-slim\n")
    make_gradebook(root, OLD, OLD_STATUS)
    monkeypatch.setenv(settings.COURSE_ROOT_ENV, str(root))
    monkeypatch.setattr(workflow, "assignments", lambda only=None: [EXERCISE])
    calls: list[Path] = []

    def fake_autograde(only=None, force=False, echo=None, progress=None, boxes=None):
        here = settings.course_root()
        assert force and (here / "submitted" / "bob" / EXERCISE / "Dockerfile").is_file()
        calls.append(here)
        set_scores(here, NEW, NEW_STATUS)
        return []
    monkeypatch.setattr(workflow, "autograde", fake_autograde)
    return root, calls


def test_a_regrade_shows_what_changes_and_writes_nothing(course, capsys):
    root, calls = course
    before = (root / "gradebook.db").read_bytes()
    assert cli.main(["regrade", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert len(calls) == 1 and calls[0] != root  # graded in a scratch copy, not in the course
    assert not calls[0].exists(), "the scratch copy is removed"
    assert (root / "gradebook.db").read_bytes() == before
    assert workflow.graded(root, [EXERCISE])[("bob", EXERCISE, "check_builds")] == (2.0, 2.0, "passed")
    assert "1 check(s) change" in out
    line = next(line for line in out.splitlines() if "check_builds" in line and "bob" in line)
    assert "2 -> 0 / 2" in line and "(passed -> failed)" in line
    assert "alice" not in out.split("1 check(s) change")[1]
    assert "nothing written; `make regrade CONFIRM=1`" in out
    assert os.environ[settings.COURSE_ROOT_ENV] == str(root)


def test_a_confirmed_regrade_writes_the_new_grades(course, capsys):
    root, calls = course
    assert cli.main(["regrade", "--quiet", "--confirm"]) == 0
    assert len(calls) == 2 and calls[1] == root.resolve()
    assert workflow.graded(root, [EXERCISE])[("bob", EXERCISE, "check_builds")] == (0.0, 2.0, "failed")
    assert "written to the gradebook" in capsys.readouterr().out


def test_a_regrade_that_changes_nothing_says_so(course, monkeypatch, capsys):
    root, calls = course
    def same_grader(*args, **kwargs):
        calls.append(settings.course_root())
        set_scores(settings.course_root(), OLD, OLD_STATUS)
        return []
    monkeypatch.setattr(workflow, "autograde", same_grader)
    assert cli.main(["regrade", "--quiet", "--confirm"]) == 0
    assert len(calls) == 1, "nothing to write: autograde runs once, in the scratch copy"
    assert "gives every collected submission the grades it has" in capsys.readouterr().out


def test_changes_cover_new_and_gone_checks():
    before = {("a", EXERCISE, "check_x"): (1.0, 1.0, "passed"), ("a", EXERCISE, "check_gone"): (1.0, 1.0, "passed")}
    after = {("a", EXERCISE, "check_x"): (1.0, 1.0, "passed"), ("a", EXERCISE, "check_new"): (0.0, 2.0, "failed")}
    found = workflow.changes(before, after)
    assert [(c.check, c.old, c.new) for c in found] == [("check_gone", 1.0, None), ("check_new", None, 0.0)]
    assert "- -> 0 / 2" in found[1].line() and "(- -> failed)" in found[1].line()
