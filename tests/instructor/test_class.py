"""A class of three through the real exchange and the make targets, on the real engine:
release -> fetch -> submit -> collect -> autograde -> feedback -> fetch_feedback -> export.

- alice submits the reference solutions;
- bob submits the untouched starters;
- carol submits a known-bad Dockerfile (01) and a hostile run.sh (02), edits an
  autograded cell, and adds a cell that patches the grader to claim full marks.

The expected grades come from the grader itself, run on this machine on the
files alice, bob and carol's 01 submitted (never on carol's hostile run.sh).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from course.instructor import settings
from grader.grading import grade
from grader.options import GradingOptions
from grader.workspace import materialize, overlay, solution_dir
from tests.instructor.conftest import box_resources

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ("01-first-image", "02-storage")
STUDENTS = ("alice", "bob", "carol", "dave")
HIDDEN_CODE = ("BEGIN HIDDEN TESTS", "forget()", "Autograding grades afresh")
BAD_DOCKERFILE = """FROM python:latest
COPY . .
RUN pip install -r requirements.txt
CMD uvicorn app.main:app --host 0.0.0.0
"""
CHEAT_CELL = """import grader.notebook as _notebook
_notebook.check_points = lambda exercise, check, workspace=None: 2.0  # every check, full marks
try:
    print(open({canary_path!r}).read())
except OSError as exc:
    print("no canary:", exc)
"""
# dave submits the untouched 01 starter (bob's twin) and a fork bomb as 02's run.sh
FORK_BOMB_RUN_SH = """#!/usr/bin/env bash
f() { f | f & }; f
"""
HOSTILE_RUN_SH = """#!/usr/bin/env bash
echo HOSTILE-RAN
cat {canary_path} 2>&1 | head -n 1
docker run --rm -v /:/host "$IMAGE" sh -c 'cat /host{canary_path}; ls /host{instructor_home}' 2>&1 | tail -n 2
echo "engine sees: $(docker ps -a --format '{{{{.Names}}}}' | tr '\\n' ' ')"
exit 1
"""


@dataclass
class Classroom:
    tmp: Path
    course: Path
    exchange: Path
    instructor_home: Path
    canary: str
    sentinel: str
    env: dict[str, str]
    expected: dict[tuple[str, str], float] = field(default_factory=dict)
    max_scores: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def home(self, student: str) -> Path:
        return self.tmp / "students" / student

    def folder(self, student: str, exercise: str) -> Path:
        return self.home(student) / exercise

    def make(self, target: str, **variables: str) -> str:
        start = time.monotonic()
        args = ["make", "-s", target] + [f"{k}={v}" for k, v in variables.items()]
        proc = subprocess.run(args, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=1500)
        key = target + "".join(f" {k}={v}" for k, v in variables.items())
        self.timings[key] = round(time.monotonic() - start, 1)
        self.logs[key] = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"`{' '.join(args)}` failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
        return proc.stdout + proc.stderr

    def student(self, student: str, *args: str) -> str:
        """nbgrader as a student: their HOME and folder, the course's exchange, no instructor config."""
        home = self.home(student)
        env = {**self.env, "HOME": str(home)}
        cmd = [sys.executable, "-m", "nbgrader", *args, "--course", settings.COURSE_ID,
               f"--Exchange.root={self.exchange}"]
        proc = subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{student}: nbgrader {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr


def edit_notebook(path: Path, canary_path: Path, cheated_cell: str) -> None:
    """carol: edit an autograded (locked) cell and add a cell that patches the grader."""
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells)
                 if c.metadata.get("nbgrader", {}).get("grade_id") == cheated_cell)
    nb.cells[index].source = "2.0  # full marks, please"
    nb.cells.insert(index, nbformat.v4.new_code_cell(CHEAT_CELL.format(canary_path=str(canary_path))))
    nbformat.write(nb, path)


def prepare_submissions(room: Classroom, canary_path: Path) -> None:
    for student in STUDENTS:
        room.home(student).mkdir(parents=True)
        for exercise in EXERCISES:
            room.student(student, "fetch_assignment", exercise)
            folder = room.folder(student, exercise)
            if student == "alice":
                overlay(solution_dir(exercise), folder)
            elif student == "carol":
                notebook = folder / f"{exercise}.ipynb"
                if exercise == "01-first-image":
                    (folder / "Dockerfile").write_text(BAD_DOCKERFILE)
                    edit_notebook(notebook, canary_path, "check_builds")
                else:
                    (folder / "run.sh").write_text(HOSTILE_RUN_SH.format(
                        canary_path=canary_path, instructor_home=room.instructor_home))
                    edit_notebook(notebook, canary_path, "check_runs")
            elif student == "dave" and exercise == "02-storage":
                (folder / "run.sh").write_text(FORK_BOMB_RUN_SH)


def expected_scores(room: Classroom, errors: list[BaseException]) -> None:
    """The grader's verdict on each trusted submission, graded on this machine."""
    try:
        for student in STUDENTS:
            for exercise in EXERCISES:
                if (student, exercise) in (("carol", "02-storage"), ("dave", "02-storage")):
                    continue  # a hostile run.sh never runs outside a box
                # the reference image, as in a box (here the student's 01 sits next to their 02)
                report = grade(exercise, room.folder(student, exercise), GradingOptions.from_env(reference_image=True))
                room.expected[(student, exercise)] = report.score
                room.max_scores[exercise] = report.max_score
    except BaseException as exc:  # reported by the fixture
        errors.append(exc)


@pytest.fixture(scope="module")
def classroom(tmp_path_factory, docker_client, box_image):
    tmp = tmp_path_factory.mktemp("classroom")
    course, exchange, home = tmp / "course", tmp / "exchange", tmp / "instructor-home"
    home.mkdir()
    canary = f"CANARY-{uuid.uuid4().hex}"
    (home / "canary.txt").write_text(canary + "\n")
    for exercise in EXERCISES:
        materialize(exercise, course / "exercises" / exercise)
    sentinel = docker_client.containers.create(
        "python:3.11-slim", ["true"], name=f"nbg-sentinel-{uuid.uuid4().hex[:8]}",
        labels={"org.genai-course.managed": "true", "org.genai-course.session": "tests"})
    env = {**os.environ, "GENAI_COURSE_ROOT": str(course), "GENAI_EXCHANGE": str(exchange), "HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    room = Classroom(tmp, course, exchange, home, canary, sentinel.name, env)
    boxes_before = box_resources(docker_client)
    try:
        room.make("release")
        prepare_submissions(room, home / "canary.txt")
        errors: list[BaseException] = []
        grading = threading.Thread(target=expected_scores, args=(room, errors))
        grading.start()  # on this machine's engine, while the boxes grade the class
        for student in STUDENTS:
            for exercise in EXERCISES:
                room.student(student, "submit", exercise, f"--student={student}")
        room.make("collect")
        room.make("autograde")
        room.make("feedback")
        for student in STUDENTS:
            for exercise in EXERCISES:
                room.student(student, "fetch_feedback", exercise, f"--student={student}")
        room.make("export", EX="01-first-image")
        room.export_one = (course / "grades.csv").read_text()
        room.make("export")
        grading.join()
        if errors:
            raise errors[0]
        room.boxes_left = {k: v - boxes_before[k] for k, v in box_resources(docker_client).items()}
        print(f"\nclass simulation timings (s): {json.dumps(room.timings)}")
        yield room
    finally:
        sentinel.remove(force=True)


def grades_csv(room: Classroom) -> dict[tuple[str, str], dict]:
    with open(room.course / "grades.csv") as fh:
        return {(row["student_id"], row["assignment"]): row for row in csv.DictReader(fh)}


def trusted_verdicts(room: Classroom, student: str, exercise: str) -> dict:
    return json.loads((room.course / "autograded" / student / exercise / "trusted-grade.json").read_text())


def feedback_html(room: Classroom, student: str, exercise: str) -> str:
    pages = list((room.folder(student, exercise) / "feedback").glob("*/*.html"))
    assert len(pages) == 1, f"{student} fetched {len(pages)} feedback pages for {exercise}"
    return pages[0].read_text()


def test_exported_grades_are_what_the_grader_gives(classroom):
    """Is each exported grade exactly the grader's score for what the student submitted?"""
    rows = grades_csv(classroom)
    assert set(rows) == {(s, e) for s in STUDENTS for e in EXERCISES}
    for (student, exercise), score in classroom.expected.items():
        row = rows[(student, exercise)]
        assert float(row["score"]) == pytest.approx(score), (student, exercise, row)
        assert float(row["max_score"]) == pytest.approx(classroom.max_scores[exercise])
    for exercise in EXERCISES:
        assert classroom.expected[("alice", exercise)] == classroom.max_scores[exercise]  # the solutions
        assert classroom.expected[("bob", exercise)] < classroom.max_scores[exercise]   # the starters
    hostile = trusted_verdicts(classroom, "carol", "02-storage")
    assert float(rows[("carol", "02-storage")]["score"]) == pytest.approx(hostile["report"]["score"])
    only_01 = list(csv.DictReader(classroom.export_one.splitlines()))
    assert {row["assignment"] for row in only_01} == {"01-first-image"} and len(only_01) == len(STUDENTS)


def test_cheating_gains_nothing(classroom):
    """Does carol's patched grader and edited locked cell earn nothing beyond the grader's verdict?"""
    rows = grades_csv(classroom)
    for exercise in EXERCISES:
        verdicts = trusted_verdicts(classroom, "carol", exercise)
        claimed = sum(c["notebook_score"] or 0 for c in verdicts["cells"])
        counted = sum(c["score"] or 0 for c in verdicts["cells"])
        assert claimed > counted, f"the patched grader should have claimed more than it got in {exercise}"
        assert counted == pytest.approx(verdicts["report"]["score"]) == pytest.approx(
            float(rows[("carol", exercise)]["score"]))
        assert any(c["action"] == "lowered" for c in verdicts["cells"])
    autograded = nbformat.read(classroom.course / "autograded" / "carol" / "01-first-image" /
                               "01-first-image.ipynb", as_version=4)
    builds = next(c for c in autograded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "check_builds")
    assert 'check_points("01-first-image", "builds")' in builds.source  # nbgrader restored the locked cell
    assert "Autograde" in classroom.logs["autograde"] and "lowered" in classroom.logs["autograde"]


def test_feedback_shows_messages_and_no_hidden_code(classroom):
    """Does every student's feedback explain the checks, without a line of hidden test code?"""
    for student in STUDENTS:
        for exercise in EXERCISES:
            html = feedback_html(classroom, student, exercise)
            for hidden in HIDDEN_CODE:
                assert hidden not in html, f"{student}/{exercise} feedback shows hidden code: {hidden}"
            assert "check_points" in html  # the visible part of the autograded cells
    assert "moving `latest` tag" in feedback_html(classroom, "carol", "01-first-image")  # a check's message
    assert "[trusted re-grading]" in feedback_html(classroom, "carol", "01-first-image")
    assert "run.sh" in feedback_html(classroom, "bob", "02-storage")


def test_a_hostile_submission_reaches_nothing(classroom):
    """Did carol's run.sh and notebook run, yet read no instructor file and see no instructor engine?"""
    hostile = trusted_verdicts(classroom, "carol", "02-storage")
    runs = next(c for c in hostile["report"]["checks"] if c["id"] == "runs")
    assert "HOSTILE-RAN" in runs["message"] and "engine sees:" in runs["message"]  # it ran, output visible
    assert classroom.sentinel not in runs["message"]
    for where in (classroom.course, classroom.exchange, classroom.tmp / "students"):
        for path in where.rglob("*"):
            if path.is_file():
                assert classroom.canary not in path.read_text(errors="replace"), f"the canary leaked into {path}"
    notebook = (classroom.course / "autograded" / "carol" / "02-storage" / "02-storage.ipynb").read_text()
    assert "no canary:" in notebook  # the notebook's attempt ran in the box, and found nothing


def test_a_fork_bomb_earns_nothing_and_its_notebook_claims_nothing(classroom):
    """Does dave's fork-bomb run.sh score 0, with no notebook cell claiming a point (nbgrader would give full
    credit to a cell whose grading died before returning), and the box survive to grade it?"""
    rows = grades_csv(classroom)
    assert float(rows[("dave", "02-storage")]["score"]) == 0
    verdicts = trusted_verdicts(classroom, "dave", "02-storage")
    claimed = {c["grade_id"]: c["notebook_score"] for c in verdicts["cells"]}
    assert claimed and all(not score for score in claimed.values()), claimed
    assert verdicts["report"] is not None, verdicts.get("trusted_error")  # graded, not crashed
    assert float(rows[("dave", "01-first-image")]["score"]) == float(rows[("bob", "01-first-image")]["score"])


def test_no_docker_resource_is_left_behind(classroom):
    """Are all the boxes' containers, networks and volumes gone after the whole class?"""
    assert classroom.boxes_left == {"containers": set(), "networks": set(), "volumes": set()}


def test_release_comes_from_the_generated_source(classroom):
    """Is the released notebook made from the source generated at release (the learner notebook with the
    reference quoted in solution regions and the hidden tests), and does it keep neither?"""
    from course.instructor.source import RELEASED_STUB

    for exercise in EXERCISES:
        learner = (classroom.course / "exercises" / exercise / f"{exercise}.ipynb").read_text()
        source = (classroom.course / "source" / exercise / f"{exercise}.ipynb").read_text()
        released = (classroom.exchange / settings.COURSE_ID / "outbound" / exercise / f"{exercise}.ipynb").read_text()
        assert "BEGIN SOLUTION" not in learner and "BEGIN HIDDEN TESTS" not in learner
        assert "BEGIN SOLUTION" in source and "BEGIN HIDDEN TESTS" in source
        assert "BEGIN SOLUTION" not in released and "forget()" not in released and RELEASED_STUB in released
        for name in ("Dockerfile", "run.sh"):
            reference = solution_dir(exercise) / name
            if reference.is_file():
                assert reference.read_text().splitlines()[-1] not in released
