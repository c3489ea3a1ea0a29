"""Grading one submission in grading boxes: notebook execution and the trusted grading.

Both start a fresh box, give it the trusted course code read-only (dockerkit/, grader/,
course/, course.yaml, service/, and checkpoints/ for a submission that lacks a file it builds
on: never exercises/ or solutions/, which hold the solutions and hidden tests), the model read-only, the base images the exercise
needs, and a copy of the submission's files; both bring back one JSON document
and nothing else.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import docker

from course.instructor import boximage, settings
from course.instructor.box import COURSE_DIR, JANITOR, GradingBox
from course.instructor.errors import InstructorError, UntrustedOutput

# The trusted code a box gets, relative to the repository; never exercises/ or solutions/.
COURSE_FILES = ("dockerkit", "grader", "course", "course.yaml", "service", "checkpoints")
# Limits the grader reads from the environment travel into the box.
PASSED_ENV_PREFIXES = ("GENAI_GRADER_",)
BOX_PYTHON = "/usr/local/lib/grading-box/venv/bin/python3"
WORK_ROOT = "/home/grader/work"


@dataclass(frozen=True)
class ExerciseNeeds:
    images: tuple[str, ...]
    service_image: str | None
    models_dir: Path | None


def exercise_needs(exercise_id: str, announce: Callable[[str], None] = print) -> ExerciseNeeds:
    """What a box grading this exercise must hold, asked from the grader itself."""
    from grader import registry
    from grader.engine import Engine
    from grader.grading import ensure_service_image
    from grader.options import GradingOptions, models_dir

    exercise = registry.get(exercise_id)
    images = list(settings.BoxLimits.from_env().images) + list(exercise.facts.images)
    service_image = None
    if "service_image" in exercise.needs:
        engine = Engine.connect()
        try:
            service_image = ensure_service_image(engine, GradingOptions.from_env())
        finally:
            engine.client.close()
        images.append(service_image)
    model = models_dir() if "model" in exercise.needs or service_image else None
    return ExerciseNeeds(tuple(dict.fromkeys(images)), service_image, model)


def box_env(needs: ExerciseNeeds) -> dict[str, str]:
    env = {"PYTHONPATH": COURSE_DIR, "PYTHONDONTWRITEBYTECODE": "1"}
    if needs.models_dir is not None:
        env["GENAI_MODELS_DIR"] = f"{COURSE_DIR}/models/{needs.models_dir.name}"
    if needs.service_image:
        env["GENAI_SERVICE_IMAGE"] = needs.service_image
    for key, value in os.environ.items():
        if key.startswith(PASSED_ENV_PREFIXES):
            env[key] = value
    return env


@dataclass
class Submission:
    """One student's work on one exercise, in a host folder."""
    student: str
    exercise: str
    folder: Path
    skipped: list[str] = field(default_factory=list)  # links and special files left out

    @property
    def box_workspace(self) -> str:
        return f"{WORK_ROOT}/{self.exercise}"


@contextmanager
def _open_box(client, image: str, submission: Submission, needs: ExerciseNeeds, role: str,
              limits: settings.BoxLimits) -> Iterator[GradingBox]:
    """A started box for one submission; removed in the background once done with."""
    box = GradingBox(client, image, name=f"{submission.student}-{submission.exercise}-{role}",
                     limits=limits, models_dir=needs.models_dir, session=str(uuid.uuid4()))
    box.__enter__()  # removes what it created if it cannot start
    try:
        yield box
    finally:
        JANITOR.remove_later(box)


def _prepare(box: GradingBox, submission: Submission, needs: ExerciseNeeds) -> None:
    box.load_images(needs.images)
    for rel in COURSE_FILES:
        source = settings.REPO_ROOT / rel
        if source.is_dir():
            box.put_tree(source, f"{COURSE_DIR}/{rel}", read_only=True)
        elif source.is_file():
            box.put_file(source, COURSE_DIR, read_only=True)
    # Notebooks stay out: the kernel must not read the notebook, whose hidden tests
    # are restored at autograde; the runner gets it on its standard input.
    submission.skipped = box.put_tree(submission.folder, submission.box_workspace, exclude=_not_submitted)


def _not_submitted(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return name.endswith(".ipynb") or name in (".ipynb_checkpoints", "__pycache__")


def disk_note(box: GradingBox) -> str | None:
    """One clear line when the submission filled the box's disk budget, else None."""
    full = box.disk_full()
    if not full:
        return None
    return (f"the submission filled its grading box's disk budget (GENAI_BOX_DISK={box.limits.disk}): "
            f"{', '.join(full)} full; what it wrote past that failed with 'No space left on device'")


def _decode(stdout: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(stdout.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UntrustedOutput(f"{what} did not return one JSON document") from None
    if not isinstance(document, dict):
        raise UntrustedOutput(f"{what} returned {type(document).__name__}, not an object")
    if "error" in document:
        raise InstructorError(f"{what} failed in the box: {document['error']}")
    return document


@dataclass(frozen=True)
class ExecutedNotebook:
    notebook_json: str
    problem: str | None     # the kernel died, a cell timed out badly...
    duration_s: float
    skipped: tuple[str, ...]


def execute_notebook(notebook_json: str, submission: Submission, *, client=None,
                     limits: settings.BoxLimits | None = None, needs: ExerciseNeeds | None = None,
                     announce: Callable[[str], None] = print,
                     on_ready: Callable[[], None] = lambda: None) -> ExecutedNotebook:
    """Execute a notebook in a fresh box, with the submission's files as its folder."""
    limits = limits or settings.BoxLimits.from_env()
    needs = needs or exercise_needs(submission.exercise, announce)
    image = boximage.ensure_image(announce)
    own_client = client is None
    client = client or docker.from_env(timeout=300)
    try:
        with _open_box(client, image, submission, needs, "run", limits) as box:
            _prepare(box, submission, needs)
            on_ready()
            env = {**box_env(needs), "NBGRADER_EXECUTION": "autograde"}
            result = box.run([BOX_PYTHON, "-m", "course.instructor.inbox", "execute",
                              "--workdir", submission.box_workspace, "--cell-timeout", str(limits.cell_timeout)],
                             stdin=notebook_json.encode(), workdir=COURSE_DIR, env=env,
                             timeout=limits.notebook_timeout)
            full = disk_note(box)
            document = _decode(result.stdout, f"executing {submission.exercise} for {submission.student}")
            if not isinstance(document.get("notebook"), str):
                raise UntrustedOutput("the box returned no notebook")
            problem = "; ".join(p for p in (document.get("problem"), full) if p) or None
            return ExecutedNotebook(document["notebook"], problem, result.duration_s, tuple(submission.skipped))
    finally:
        if own_client:
            client.close()


@dataclass(frozen=True)
class TrustedGrade:
    """The grader's report on the submission's files (the contract's JSON report, as data), from a
    box where no notebook code ran; or why there is none."""
    report: dict[str, Any] | None
    error: str | None
    duration_s: float
    notes: tuple[str, ...] = ()     # e.g. the submission filled its box's disk budget

    def points(self, check_id: str) -> float | None:
        if not self.report:
            return None
        for check in self.report.get("checks", []):
            if check.get("id") == check_id:
                return float(check.get("points", 0.0))
        return None


def trusted_grade(submission: Submission, *, client=None, limits: settings.BoxLimits | None = None,
                  needs: ExerciseNeeds | None = None, announce: Callable[[str], None] = print) -> TrustedGrade:
    """The grader's `grade()` on the submission's files in a fresh box. Never raises:
    a grading that cannot finish is a TrustedGrade with an error (it counts as no points)."""
    import time

    start = time.monotonic()
    limits = limits or settings.BoxLimits.from_env()
    own_client = client is None
    try:
        needs = needs or exercise_needs(submission.exercise, announce)
        image = boximage.ensure_image(announce)
        client = client or docker.from_env(timeout=300)
        with _open_box(client, image, submission, needs, "grade", limits) as box:
            _prepare(box, submission, needs)
            result = box.run([BOX_PYTHON, "-m", "course.instructor.inbox", "grade", submission.exercise,
                              "--workspace", submission.box_workspace],
                             workdir=COURSE_DIR, env=box_env(needs), timeout=limits.grading_timeout)
            full = disk_note(box)
        if full:  # past its budget, a submission fails its own grading, whatever it printed
            return TrustedGrade(None, full, time.monotonic() - start, (full,))
        notes: tuple[str, ...] = ()
        document = _decode(result.stdout, f"grading {submission.exercise} for {submission.student}")
        if "cannot_grade" in document:
            return TrustedGrade(None, f"cannot grade: {document['cannot_grade']}", time.monotonic() - start, notes)
        report = document.get("report")
        if not isinstance(report, dict) or report.get("exercise") != submission.exercise:
            raise UntrustedOutput("the grader's report is not a report of this exercise")
        return TrustedGrade(report, None, time.monotonic() - start, notes)
    except Exception as exc:  # fail closed: the caller gives no points for what it cannot verify
        return TrustedGrade(None, f"{type(exc).__name__}: {exc}", time.monotonic() - start)
    finally:
        if own_client and client is not None:
            client.close()
