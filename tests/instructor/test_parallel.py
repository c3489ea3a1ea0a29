"""`make autograde` grades several submissions at once, through grading jobs with stored results:
grades are identical to one-at-a-time grading, identical submissions are graded once, and a
second autograde with the same grader reuses every result without starting a box."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from course.instructor import jobs
from grader.workspace import materialize, overlay, solution_dir
from tests.instructor.conftest import box_resources
from tests.instructor.test_class import Classroom, by_check

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXERCISE = "01-first-image"
# alice: the reference; bob and dave: the untouched starter (identical submissions)
STUDENTS = ("alice", "bob", "dave")


@pytest.fixture(scope="module")
def small_class(tmp_path_factory, docker_client, box_image):
    tmp = tmp_path_factory.mktemp("parallel-class")
    course, exchange, home = tmp / "course", tmp / "exchange", tmp / "instructor-home"
    home.mkdir()
    materialize(EXERCISE, course / "exercises" / EXERCISE)
    env = {**os.environ, "GENAI_COURSE_ROOT": str(course), "GENAI_EXCHANGE": str(exchange), "HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    room = Classroom(tmp, course, exchange, home, f"CANARY-{uuid.uuid4().hex}", "", env)
    boxes_before = box_resources(docker_client)
    room.make("release", EX=EXERCISE)
    for student in STUDENTS:
        room.home(student).mkdir(parents=True)
        room.student(student, "fetch_assignment", EXERCISE)
        if student == "alice":
            overlay(solution_dir(EXERCISE), room.folder(student, EXERCISE))
        room.student(student, "submit", EXERCISE, f"--student={student}")
    room.make("collect", EX=EXERCISE)

    # one job at a time (two boxes: execution and cross-check)...
    room.env["GENAI_GRADING_BOXES"] = "2"
    room.serial_log = room.make("autograde", EX=EXERCISE)
    room.make("export", EX=EXERCISE)
    room.serial = by_check(room)
    # ... then the same submissions again, afresh (no stored result), two jobs at once
    shutil.rmtree(course / ".state" / "grading-jobs")
    room.env["GENAI_GRADING_BOXES"] = "4"
    room.parallel_log = room.make("autograde", EX=EXERCISE, FORCE="1")
    room.make("export", EX=EXERCISE)
    room.parallel = by_check(room)
    # ... and once more with the same grader: every result is reused
    room.reused_log = room.make("autograde", EX=EXERCISE, FORCE="1")
    room.make("export", EX=EXERCISE)
    room.reused = by_check(room)
    room.boxes_left = {k: v - boxes_before[k] for k, v in box_resources(docker_client).items()}
    print(f"\nparallel class timings (s): {room.timings}\n{room.parallel_log[-3000:]}")
    return room


def test_grades_at_concurrency_n_are_those_of_serial_grading(small_class):
    assert small_class.serial == small_class.parallel == small_class.reused
    scores = {(r["student_id"], r["grade_id"]): float(r["score"]) for r in small_class.serial}
    assert {student for student, _ in scores} == set(STUDENTS)
    alice = [r for r in small_class.serial if r["student_id"] == "alice"]
    assert all(float(r["score"]) == float(r["max_score"]) for r in alice), f"the reference loses points: {alice}"
    bob = sum(v for (s, _), v in scores.items() if s == "bob")
    assert bob < sum(float(r["max_score"]) for r in alice), "the untouched starter does not earn full marks"
    assert "2 boxes in flight, 1 job(s) at once" in small_class.serial_log
    assert "4 boxes in flight, 2 job(s) at once" in small_class.parallel_log


def test_identical_submissions_are_graded_once_and_the_report_says_so(small_class):
    for log in (small_class.serial_log, small_class.parallel_log):
        assert "3 submission(s), 2 job(s) (1 identical submission(s) share a job" in log
        assert "one job for 2 identical submissions" in log
        assert "running" in log and ": box ready" in log and ": cross-checked" in log
    assert "0 result(s) reused" in small_class.parallel_log
    assert "2 result(s) reused from an earlier grading" in small_class.reused_log
    assert ": box ready" not in small_class.reused_log, "a reused result starts no box"


def test_every_job_leaves_nothing_behind(small_class):
    assert small_class.boxes_left == {"containers": set(), "networks": set(), "volumes": set()}
    assert not list((small_class.course / ".state" / "grading-jobs" / "runs").glob("*"))


def test_a_job_key_depends_on_content_exercise_and_grader(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (folder / "timestamp.txt").write_text("2026-01-01")
    key = jobs.job_key('{"cells": []}', folder, EXERCISE)
    (folder / "timestamp.txt").write_text("2026-01-02")  # when it was submitted does not count
    (folder / "other.ipynb").write_text("{}")            # notebooks never go into the box
    assert jobs.job_key('{"cells": []}', folder, EXERCISE) == key
    assert jobs.job_key('{"cells": [], "x": 1}', folder, EXERCISE) != key
    assert jobs.job_key('{"cells": []}', folder, "02-storage") != key
    (folder / "Dockerfile").write_text("FROM python:3.12-slim\n")
    assert jobs.job_key('{"cells": []}', folder, EXERCISE) != key
