"""Grading jobs without an engine: identity, the store, the bound on jobs at once, progress."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from course.instructor import jobs, settings

EXERCISE = "01-first-image"


@pytest.fixture
def course_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GENAI_COURSE_ROOT", str(tmp_path))
    monkeypatch.setenv(jobs.RUN_ENV, "run-1")
    return tmp_path


def submission(root: Path, name: str, dockerfile: str, secret: str) -> Path:
    folder = root / "autograded" / name / EXERCISE
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(dockerfile)
    (folder / "submission_secret.txt").write_text(secret)  # nbgrader's, per student
    (folder / "timestamp.txt").write_text(secret)
    (folder / f"{EXERCISE}.ipynb").write_text("{}")
    return folder


def test_identical_submissions_plan_one_job_that_holds_only_what_the_box_gets(course_root):
    nb = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    bob = jobs.plan(nb, submission(course_root, "bob", "FROM python:3.11-slim\n", "s1"), "bob", EXERCISE)
    dave = jobs.plan(nb, submission(course_root, "dave", "FROM python:3.11-slim\n", "s2"), "dave", EXERCISE)
    alice = jobs.plan(nb, submission(course_root, "alice", "FROM python:3.11-alpine\n", "s3"), "alice", EXERCISE)
    assert bob == dave != alice
    files = sorted(p.name for p in (jobs.store_root() / bob / "files").iterdir())
    assert files == ["Dockerfile"], "notebooks and nbgrader's own files never go into a box"
    assert [row["key"] for row in jobs.planned("run-1")] == [alice, bob, dave]
    folder = course_root / "autograded" / "dave" / EXERCISE
    assert jobs.planned_key(nb, folder, "dave", EXERCISE) == dave
    (folder / "Dockerfile").write_text("FROM python:3.12-slim\n")
    with pytest.raises(jobs.JobMissing, match="changed between planning and grading"):
        jobs.planned_key(nb, folder, "dave", EXERCISE)


def test_jobs_run_within_the_box_bound_report_progress_and_reuse_results(course_root, monkeypatch):
    nb = json.dumps({"cells": []})
    rows = []
    for i in range(5):
        folder = submission(course_root, f"s{i}", f"FROM python:3.11-slim\n# {i % 4}\n", f"secret{i}")
        rows.append({"student": f"s{i}", "exercise": EXERCISE, "key": jobs.plan(nb, folder, f"s{i}", EXERCISE)})
    running, most = [0], [0]
    lock, gate = threading.Lock(), threading.Barrier(2, timeout=30)

    def fake_grade_job(job_dir, *, limits=None, on_phase=lambda p: None, announce=None):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        gate.wait()  # two jobs are in flight together, or the bound is wrong
        on_phase("box ready")
        with lock:
            running[0] -= 1
        return {"key": job_dir.name, "executed": {}, "trusted": {}, "phases": {"started": 1.0, "box_ready": 2.0,
                                                                                "executed": 3.0, "cross_checked": 4.0}}

    monkeypatch.setattr(jobs, "grade_job", fake_grade_job)
    lines: list[str] = []
    states = jobs.JobRunner(boxes=5, echo=lines.append).run(rows)
    assert most[0] == 2, "5 boxes, two per job: two jobs at once"
    assert len(states) == 4 and sorted(len(s.submissions) for s in states) == [1, 1, 1, 2]
    assert lines[0].startswith("autograde: 5 submission(s), 4 job(s) (1 identical submission(s) share a job")
    assert any(line.startswith("[done 4 / running 0 / queued 0]") for line in lines)
    assert any(": box ready" in line for line in lines)
    table = "\n".join(jobs.phase_table(states))
    assert "one job for 2 identical submissions" in table

    again: list[str] = []
    monkeypatch.setattr(jobs, "grade_job", lambda *a, **k: pytest.fail("a stored result is graded again"))
    states = jobs.JobRunner(boxes=2, echo=again.append).run(rows)
    assert all(s.reused for s in states) and "4 result(s) reused" in again[0]
    assert "reused (graded earlier" in "\n".join(jobs.phase_table(states))


def test_a_failed_job_stores_no_result_and_says_whose_fault(course_root, monkeypatch):
    folder = submission(course_root, "erin", "FROM python:3.11-slim\n", "s")
    row = {"student": "erin", "exercise": EXERCISE, "key": jobs.plan("{}", folder, "erin", EXERCISE)}

    def broken(*args, **kwargs):
        raise OSError("the engine went away")

    monkeypatch.setattr(jobs, "grade_job", broken)
    [state] = jobs.JobRunner(boxes=2, echo=None).run([row])
    assert state.error and "the engine went away" in state.error
    assert jobs.load_result(row["key"]) is None
    assert "not the learner's fault" in "\n".join(jobs.phase_table([state]))


def test_boxes_in_flight_come_from_the_host_and_the_limits(monkeypatch):
    limits = settings.BoxLimits.from_env(cpus=1.0, memory="2g")
    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 8)
    assert jobs.default_boxes(limits) <= 16
    assert jobs.default_boxes(limits) >= 2
    monkeypatch.setenv(jobs.BOXES_ENV, "6")
    assert jobs.boxes_in_flight() == 6
    monkeypatch.setenv(jobs.BOXES_ENV, "0")
    with pytest.raises(jobs.InstructorError, match="at least 1"):
        jobs.boxes_in_flight()
