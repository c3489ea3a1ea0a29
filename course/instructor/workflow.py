"""The steps behind `make release | collect | autograde | feedback | export`.

Each step runs nbgrader from the repository root (where nbgrader_config.py is)
for one exercise or for every exercise that has a notebook, and returns data;
printing is __main__'s business.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from course.instructor import boximage, jobs, settings, taskqueue
from course.instructor.errors import InstructorError
from course.instructor.preprocessors import TRUSTED_REPORT


class StepFailed(InstructorError):
    """An nbgrader command failed; its output says why."""


@dataclass(frozen=True)
class StepResult:
    exercise: str
    command: tuple[str, ...]
    returncode: int
    output: str


def assignments(only: str | None = None) -> list[str]:
    """Exercises that are nbgrader assignments: those whose notebook exists, in course order."""
    from course.manifest import load

    course = load()
    ready = [e.id for e in course.exercises if (settings.course_root() / e.notebook).is_file()]
    if only is None:
        return ready
    known = [e.id for e in course.exercises]
    if only not in known:
        raise InstructorError(f"no exercise {only!r}; the exercises are {', '.join(known)}")
    if only not in ready:
        raise InstructorError(f"{only} has no notebook yet ({course.exercise(only).notebook})")
    return [only]


def nbgrader(*args: str, exercise: str = "", check: bool = True,
             echo: Callable[[str], None] | None = None, extra_env: dict[str, str] | None = None) -> StepResult:
    cmd = (sys.executable, "-m", "nbgrader", *args)
    # nbgrader runs `alembic` (gradebook migrations) from PATH: this environment's first.
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           **(extra_env or {})}
    proc = subprocess.run(cmd, cwd=settings.REPO_ROOT, capture_output=True, text=True, env=env)
    output = proc.stdout + proc.stderr
    if echo:
        for line in output.splitlines():
            echo(line)
    result = StepResult(exercise, cmd[2:], proc.returncode, output)
    if check and proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        raise StepFailed(f"`nbgrader {' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
    return result


def release(only: str | None = None, echo=None) -> list[StepResult]:
    """generate_assignment then release_assignment, for each exercise."""
    results = []
    if settings.course_root() == settings.REPO_ROOT:
        from grader import workspace

        workspace.sync()  # the service files some exercises build on (git-ignored copies)
    from course.instructor import source

    for ex in assignments(only):
        source.generate(ex)  # nbgrader's source: the learner notebook + the reference solutions
        results.append(nbgrader("generate_assignment", ex, "--force", exercise=ex, echo=echo))
        results.append(nbgrader("release_assignment", ex, "--force", exercise=ex, echo=echo))
    return results


@dataclass
class Quarantine:
    removed: list[str] = field(default_factory=list)


def remove_links(exercise: str) -> Quarantine:
    """Remove links and special files from the inbound submissions of `exercise`.

    nbgrader's collect copies with shutil, which follows links: a submission holding
    a link to ~/.ssh/id_rsa would be copied with the instructor's rights. A link is
    never a legitimate part of a submission."""
    inbound = settings.exchange_root() / settings.COURSE_ID / "inbound"
    found = Quarantine()
    if not inbound.is_dir():
        return found
    for submission in sorted(inbound.iterdir()):
        parts = submission.name.split("+")
        if len(parts) < 3 or parts[1] != exercise:
            continue
        if submission.is_symlink():
            submission.unlink()
            found.removed.append(submission.name)
            continue
        for root, dirs, files in os.walk(submission, followlinks=False):
            for name in dirs + files:
                path = Path(root, name)
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    path.unlink()
                    found.removed.append(str(path.relative_to(inbound)))
            dirs[:] = [d for d in dirs if Path(root, d).is_dir() and not Path(root, d).is_symlink()]
    return found


def collect(only: str | None = None, echo=None) -> list[StepResult]:
    results = []
    for ex in assignments(only):
        for removed in remove_links(ex).removed:
            if echo:
                echo(f"collect: removed {removed} (links and special files are never collected)")
        results.append(nbgrader("collect", ex, "--update", exercise=ex, echo=echo))
    return results


def _has(step: str, exercise: str) -> bool:
    """Whether any student has a folder of `exercise` in nbgrader's `step` folder."""
    return any((settings.course_root() / settings.GENERATED[step]).glob(f"*/{exercise}"))


def autograde(only: str | None = None, force: bool = False, echo=None, boxes: int | None = None,
              progress: Callable[[str], None] | None = print) -> list[StepResult]:
    """Plan, run the grading jobs with bounded concurrency, then let nbgrader consume the results
    (course/instructor/jobs.py). nbgrader's log goes to `echo`, the jobs' progress to `progress`.
    With GENAI_GRADING_QUEUE set, the jobs run on the grading workers (course/instructor/taskqueue.py)."""
    queued = taskqueue.configured()
    if not queued:
        boximage.ensure_image(echo or print)
    todo = []
    for ex in assignments(only):
        if _has("submitted", ex):
            todo.append(ex)
        elif echo:
            echo(f"autograde: nothing collected for {ex}; skipped")
    if not todo:
        return []
    run = uuid.uuid4().hex
    flags = ["--force"] if force else []
    try:
        for ex in todo:
            planning = nbgrader("autograde", ex, *flags, exercise=ex, check=False,
                                extra_env={jobs.PHASE_ENV: "plan", jobs.RUN_ENV: run})
            # The plan pass stops every submission on purpose (jobs.Planned); nothing else may fail.
            failed = planning.output.count("There was an error processing assignment: ")
            stopped = planning.output.count("jobs.Planned: ")
            if failed > stopped or (planning.returncode != 0 and not stopped):
                tail = "\n".join(planning.output.splitlines()[-15:])
                raise StepFailed(f"planning the grading jobs of {ex} failed (exit {planning.returncode}):\n{tail}")
        if queued:
            runner: jobs.JobRunner = taskqueue.QueueRunner(echo=progress)
        else:
            runner = jobs.JobRunner(boxes or jobs.boxes_in_flight(), echo=progress)
        states = runner.run(jobs.planned(run))
        if progress and states:
            progress("grading jobs: seconds from queued to each phase")
            for line in jobs.phase_table(states):
                progress(line)
        results = []
        for ex in todo:
            results.append(nbgrader("autograde", ex, *flags, exercise=ex, echo=echo,
                                    extra_env={jobs.PHASE_ENV: "grade", jobs.RUN_ENV: run}))
        return results
    finally:
        shutil.rmtree(jobs.store_root() / "runs" / run, ignore_errors=True)


@dataclass(frozen=True)
class CrossCheckRow:
    student: str
    exercise: str
    notebook: float
    trusted: float | None
    counted: float
    flags: tuple[str, ...]


def cross_check_summary(only: str | None = None) -> list[CrossCheckRow]:
    """Per student and exercise: what the notebook claimed, what the trusted grading gave."""
    rows = []
    autograded = settings.course_root() / settings.GENERATED["autograded"]
    exercises = set(assignments(only))
    for path in sorted(autograded.glob(f"*/*/{TRUSTED_REPORT}")):
        data = json.loads(path.read_text())
        if data.get("exercise") not in exercises:
            continue
        cells = data.get("cells", [])
        claimed = sum(c["notebook_score"] or 0 for c in cells)
        counted = sum(c["score"] or 0 for c in cells)
        trusted = (data.get("report") or {}).get("score")
        flags = tuple(f"{c['grade_id']}: {c['action']}" for c in cells if c["action"] != "kept")
        rows.append(CrossCheckRow(data["student"], data["exercise"], claimed, trusted, counted, flags))
    return rows


def feedback(only: str | None = None, echo=None) -> list[StepResult]:
    results = []
    for ex in assignments(only):
        if not _has("autograded", ex):
            if echo:
                echo(f"feedback: nothing autograded for {ex}; skipped")
            continue
        results.append(nbgrader("generate_feedback", ex, "--force", exercise=ex, echo=echo))
        results.append(nbgrader("release_feedback", ex, exercise=ex, echo=echo))
    return results


def export(only: str | None = None, to: Path | None = None, echo=None) -> tuple[Path, Path]:
    """nbgrader's grades CSV (one row per student and exercise), and one row per check beside it."""
    to = to or settings.grades_csv()
    args = ["export", f"--to={to}"]
    if only:
        args.append(f"--assignment=[{json.dumps(assignments(only)[0])}]")
    nbgrader(*args, echo=echo)
    by_check = to.with_name(to.stem + "-by-check.csv")
    export_by_check(by_check, only)
    return to, by_check


def export_by_check(dest: Path, only: str | None = None) -> Path:
    from nbgrader.api import Gradebook

    wanted = set(assignments(only))
    with Gradebook(f"sqlite:///{settings.gradebook()}", settings.COURSE_ID) as gb, \
            open(dest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["assignment", "student_id", "notebook", "grade_id", "score", "max_score",
                         "needs_manual_grade"])
        for assignment in gb.assignments:
            if assignment.name not in wanted:
                continue
            for submission in gb.assignment_submissions(assignment.name):
                for notebook in submission.notebooks:
                    for grade in sorted(notebook.grades, key=lambda g: g.name):
                        writer.writerow([assignment.name, submission.student.id, notebook.name, grade.name,
                                         grade.score, grade.max_score, grade.needs_manual_grade])
    return dest
