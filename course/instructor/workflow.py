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
        return [e for e in ready if not course.exercise(e).self_paced]
    known = [e.id for e in course.exercises]
    if only not in known:
        raise InstructorError(f"no exercise {only!r}; the exercises are {', '.join(known)}")
    if only not in ready:
        raise InstructorError(f"{only} has no notebook yet ({course.exercise(only).notebook})")
    if course.exercise(only).self_paced:
        raise InstructorError(f"{only} is graded self-paced only (make grade EX={only}): "
                              f"{course.exercise(only).self_paced}")
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
class Change:
    """What a regrade would change in one check of one student's exercise."""
    student: str
    exercise: str
    check: str                # the grade cell (check_<check id>)
    old: float | None         # counted points (None: not graded before / not any more)
    new: float | None
    max_score: float
    old_status: str | None    # the trusted grader's verdict on the check
    new_status: str | None

    def line(self) -> str:
        def points(value: float | None) -> str:
            return "-" if value is None else f"{value:g}"
        text = f"{self.student:<16} {self.exercise:<18} {self.check:<28} {points(self.old):>5} -> {points(self.new)}"
        text += f" / {self.max_score:g}"
        if self.old_status != self.new_status:
            text += f"  ({self.old_status or '-'} -> {self.new_status or '-'})"
        return text


def graded(root: Path, exercises: list[str]) -> dict[tuple[str, str, str], tuple[float, float, str | None]]:
    """Per (student, exercise, grade cell) in the course folder `root`: the counted points, the
    most there are, and the trusted grader's status of the check."""
    from nbgrader.api import Gradebook

    from course.instructor.preprocessors import CHECK_PREFIX

    found: dict[tuple[str, str, str], tuple[float, float, str | None]] = {}
    if not (root / "gradebook.db").is_file():
        return found
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", settings.COURSE_ID) as gb:
        names = {a.name for a in gb.assignments}
        for exercise in exercises:
            if exercise not in names:
                continue
            for submission in gb.assignment_submissions(exercise):
                student = submission.student.id
                report_path = root / settings.GENERATED["autograded"] / student / exercise / TRUSTED_REPORT
                report = json.loads(report_path.read_text()).get("report") if report_path.is_file() else None
                statuses = {c["id"]: c["status"] for c in (report or {}).get("checks", [])}
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        if grade.score is None and grade.auto_score is None:
                            continue  # never autograded (e.g. a submission nbgrader skipped)
                        status = statuses.get(grade.name.removeprefix(CHECK_PREFIX))
                        found[(student, exercise, grade.name)] = (float(grade.score or 0), float(grade.max_score),
                                                                  status)
    return found


def changes(before: dict[tuple[str, str, str], tuple[float, float, str | None]],
            after: dict[tuple[str, str, str], tuple[float, float, str | None]]) -> list[Change]:
    """Every check whose points or status differ between two gradings, in student order."""
    found = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and old[0] == new[0] and old[2] == new[2]:
            continue
        student, exercise, check = key
        found.append(Change(student, exercise, check, old[0] if old else None, new[0] if new else None,
                            (new or old)[1], old[2] if old else None, new[2] if new else None))  # type: ignore[index]
    return found


def regrade(only: str | None = None, confirm: bool = False, echo=None,
            progress: Callable[[str], None] | None = print) -> list[Change]:
    """Grade the collected submissions again with the current grader (only jobs without a result of
    this grader version run) in a scratch copy of the gradebook, and return what would change.
    With `confirm`, autograde then writes it (every job's result is stored by now: no box starts)."""
    todo = [ex for ex in assignments(only) if _has("submitted", ex)]
    if not todo:
        return []
    root = settings.course_root()
    scratch = root / ".state" / f"regrade-{uuid.uuid4().hex[:8]}"
    saved = os.environ.get(settings.COURSE_ROOT_ENV)
    try:
        scratch.mkdir(parents=True)
        if settings.gradebook().is_file():
            shutil.copy2(settings.gradebook(), scratch / "gradebook.db")
        # What nbgrader reads: the learner notebooks (which exercises exist), the source and the
        # submissions; the job store is shared (results are keyed by content and grader version).
        (scratch / "exercises").symlink_to(root / "exercises")
        for ex in todo:
            shutil.copytree(root / settings.SOURCE_DIRECTORY / ex, scratch / settings.SOURCE_DIRECTORY / ex)
            for folder in (root / settings.GENERATED["submitted"]).glob(f"*/{ex}"):
                shutil.copytree(folder, scratch / settings.GENERATED["submitted"] / folder.parent.name / ex)
        jobs.store_root().mkdir(parents=True, exist_ok=True)
        (scratch / ".state").mkdir()
        (scratch / ".state" / "grading-jobs").symlink_to(jobs.store_root())
        os.environ[settings.COURSE_ROOT_ENV] = str(scratch)
        autograde(only, force=True, echo=echo, progress=progress)
        after = graded(scratch, todo)
    finally:
        if saved is None:
            os.environ.pop(settings.COURSE_ROOT_ENV, None)
        else:
            os.environ[settings.COURSE_ROOT_ENV] = saved
        shutil.rmtree(scratch, ignore_errors=True)
    found = changes(graded(root, todo), after)
    if confirm and found:
        autograde(only, force=True, echo=echo, progress=progress)
    return found


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
