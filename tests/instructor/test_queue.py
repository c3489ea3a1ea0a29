"""Grading on two workers through the queue (Celery + Redis), one of them killed mid-job: the job is
graded by the other, the gradebook is that of serial grading, and no box is left on the engine."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from course.instructor import settings, taskqueue
from dockerkit.net import free_port
from dockerkit.wait import poll
from grader.workspace import materialize, overlay, solution_dir
from tests.instructor.conftest import box_resources
from tests.instructor.test_class import ROOT, Classroom

pytestmark = [pytest.mark.docker, pytest.mark.slow]

EXERCISE = "01-first-image"
STUDENTS = ("alice", "bob")  # the reference, the untouched starter: two jobs
VISIBILITY_S = 5  # short here, so that the killed worker's job is handed on at once


def by_check(room: Classroom) -> list[dict[str, str]]:
    with open(room.course / "grades-by-check.csv") as fh:
        return sorted(csv.DictReader(fh), key=lambda row: (row["student_id"], row["grade_id"]))


def start_worker(room: Classroom, log: Path) -> subprocess.Popen:
    """`make grading-worker` in its own process group, its log in `log`; returns once it takes jobs."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(["make", "-s", "grading-worker", "JOBS=1"], cwd=ROOT, env=room.env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def exited() -> str | None:
        return None if proc.poll() is None else f"the worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
    poll(lambda: " ready." in log.read_text(), timeout=300, interval=0.5, what="the grading worker to be ready",
         stopped=exited)
    return proc


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(timeout=600)


@pytest.fixture(scope="module")
def queued_class(tmp_path_factory, docker_client, box_image):
    import redis

    tmp = tmp_path_factory.mktemp("queued-class")
    course, exchange, home = tmp / "course", tmp / "exchange", tmp / "instructor-home"
    home.mkdir()
    materialize(EXERCISE, course / "exercises" / EXERCISE)
    port = free_port()
    env = {**os.environ, "GENAI_COURSE_ROOT": str(course), "GENAI_EXCHANGE": str(exchange), "HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           taskqueue.QUEUE_DIR_ENV: str(tmp / "queue"), "GENAI_QUEUE_PORT": str(port)}
    room = Classroom(tmp, course, exchange, home, f"CANARY-{uuid.uuid4().hex}", "", env)
    boxes_before = box_resources(docker_client)
    workers: list[subprocess.Popen] = []
    room.make("grading-queue")
    try:
        room.make("release", EX=EXERCISE)
        for student in STUDENTS:
            room.home(student).mkdir(parents=True)
            room.student(student, "fetch_assignment", EXERCISE)
            if student == "alice":
                overlay(solution_dir(EXERCISE), room.folder(student, EXERCISE))
            room.student(student, "submit", EXERCISE, f"--student={student}")
        room.make("collect", EX=EXERCISE)
        room.env["GENAI_GRADING_BOXES"] = "2"
        room.make("autograde", EX=EXERCISE)  # serial, on this host
        room.make("export", EX=EXERCISE)
        room.serial = by_check(room)

        shutil.rmtree(course / ".state" / "grading-jobs")
        room.env.update({taskqueue.QUEUE_ENV: f"redis://127.0.0.1:{port}/0",
                         taskqueue.VISIBILITY_ENV: str(VISIBILITY_S)})
        first = start_worker(room, tmp / "worker-1.log")
        workers.append(first)
        autograde = subprocess.Popen(["make", "-s", "autograde", f"EX={EXERCISE}", "FORCE=1"], cwd=ROOT,
                                     env=room.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        label = {"label": settings.WORKER_LABEL}
        poll(lambda: docker_client.containers.list(all=True, filters=label), timeout=600, interval=0.5,
             what="the first worker's box")
        stop(first, signal.SIGKILL)  # mid-job: the job was never acknowledged
        room.killed_boxes = {c.name for c in docker_client.containers.list(all=True, filters=label)}
        store = redis.Redis(port=port, password=(tmp / "queue" / "password").read_text().strip())
        # Redis hands the job on once its visibility timeout has passed since the delivery
        poll(lambda: all(score < time.time() - VISIBILITY_S
                         for _, score in store.zrange("unacked_index", 0, -1, withscores=True)),
             timeout=60, interval=0.5, what="the killed worker's job to become visible again")
        store.close()
        second = start_worker(room, tmp / "worker-2.log")
        workers.append(second)
        room.queued_log, _ = autograde.communicate(timeout=1500)
        assert autograde.returncode == 0, room.queued_log[-4000:]
        room.make("export", EX=EXERCISE)
        room.queued = by_check(room)
        stop(second)
        # the same grader again: a regrade finds nothing to change and starts no box, nor asks a worker
        room.regrade_log = room.make("regrade", EX=EXERCISE)
        room.make("export", EX=EXERCISE)
        room.after_regrade = by_check(room)
        room.worker_logs = [(tmp / f"worker-{n}.log").read_text() for n in (1, 2)]
        room.boxes_left = {k: v - boxes_before[k] for k, v in box_resources(docker_client).items()}
        print(f"\nqueued class:\n{room.queued_log[-3000:]}\nsecond worker:\n{room.worker_logs[1][-3000:]}")
        yield room
    finally:
        for proc in workers:
            stop(proc, signal.SIGKILL)
        room.make("grading-queue-stop")
        taskqueue.reap(docker_client)  # what its killed workers left, should the test fail before


def test_two_workers_one_killed_grade_as_serial_grading(queued_class):
    assert queued_class.queued == queued_class.serial
    assert {row["student_id"] for row in queued_class.serial} == set(STUDENTS)
    log = queued_class.queued_log
    assert "sent to the grading queue redis://" in log and "2 job(s)" in log
    second = queued_class.worker_logs[1]
    assert "succeeded" in second and second.count("succeeded") >= 2, "the second worker graded both jobs"


def test_a_killed_worker_leaves_nothing_behind(queued_class):
    assert queued_class.killed_boxes, "the first worker was killed before its box started"
    second = queued_class.worker_logs[1]
    for box in queued_class.killed_boxes:
        assert f"removed {box}" in second, f"the killed worker's box {box} was not reaped"
    assert queued_class.boxes_left == {"containers": set(), "networks": set(), "volumes": set()}
    leftovers = queued_class.course / ".state" / "grading-worker"
    assert not leftovers.is_dir() or not any(leftovers.rglob("*-*"))


def test_a_regrade_with_the_same_grader_changes_nothing(queued_class):
    log = queued_class.regrade_log
    assert "gives every collected submission the grades it has" in log
    assert "2 result(s) reused" in log and ": box ready" not in log
    assert queued_class.after_regrade == queued_class.serial


def test_the_queue_refuses_anyone_without_its_password(queued_class):
    assert "NOAUTH" in subprocess.run(["redis-cli", "-p", queued_class.env["GENAI_QUEUE_PORT"], "ping"],
                                      capture_output=True, text=True).stdout
