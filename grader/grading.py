"""Grade one exercise: prepare what it needs, run its checks in order, return the report."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import docker.errors
import requests.exceptions

from dockerkit.labels import CACHE_LABEL, owner_labels
from grader import progress, registry
from grader.engine import Engine
from grader.errors import (CannotGrade, CheckFailed, CheckSkipped, EngineUnavailable, GraderBug,
                           ModelMissing, ServiceImageUnavailable, WorkspaceUnreadable)
from grader.options import (SERVICE_DIR, SERVICE_IMAGE_TAG, GradingOptions,
                            models_dir)
from grader.registry import CheckSpec, Exercise
from grader.results import CheckResult, ExerciseReport, Status
from grader.runner import GradingSession
from grader.workspace import starter_dir


@dataclass(frozen=True)
class Environment:
    """What the machine provides to an exercise (resolved before grading starts)."""
    models_dir: Path | None = None
    service_image: str | None = None


def run_checks(checks: Sequence[CheckSpec], ctx: Any) -> tuple[CheckResult, ...]:
    """Run checks in order; a check whose prerequisite did not pass is skipped and says which."""
    results: dict[str, CheckResult] = {}
    for spec in checks:
        start = time.monotonic()
        blocked = [r for r in spec.requires if results[r].status is not Status.PASSED]
        if blocked:
            first = results[blocked[0]]
            results[spec.id] = CheckResult(
                spec.id, Status.SKIPPED, 0.0, spec.points,
                f"skipped: needs {first.id}, which {first.status.value}",
                f"make {first.id} pass first", {"blocked_by": blocked})
            progress.emit(progress.DONE, f"{spec.id}: skipped (needs {first.id})", spec.id, Status.SKIPPED.value)
            continue
        progress.emit(progress.CHECK, f"{spec.id}: {spec.summary}", spec.id)
        try:
            outcome = spec.run(ctx)
            result = CheckResult(spec.id, Status.PASSED, spec.points, spec.points, outcome.message, "",
                                 dict(outcome.evidence), time.monotonic() - start)
        except CheckFailed as failure:
            hint = " ".join([failure.hint or spec.hint, *failure.notes])
            result = CheckResult(spec.id, Status.FAILED, 0.0, spec.points, failure.message,
                                 hint, failure.evidence, time.monotonic() - start)
        except CheckSkipped as skipped:  # the host lacks what the check needs: not counted
            result = CheckResult(spec.id, Status.SKIPPED, 0.0, 0.0, skipped.message, "",
                                 skipped.evidence, time.monotonic() - start)
        except (CannotGrade, KeyboardInterrupt):
            raise
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            if isinstance(exc, docker.errors.APIError) and exc.response is not None:
                # the engine refused something the learner's work asks for (a bad USER, say)
                result = CheckResult(spec.id, Status.FAILED, 0.0, spec.points,
                                     f"the engine refused: {exc.explanation or exc}", spec.hint,
                                     {"engine_error": str(exc)}, time.monotonic() - start)
            else:
                raise EngineUnavailable(f"the Docker engine stopped answering ({type(exc).__name__})") from exc
        except Exception as exc:
            raise GraderBug(f"check {spec.id} crashed: {type(exc).__name__}: {exc}") from exc
        results[spec.id] = result
        progress.emit(progress.DONE, f"{spec.id}: {result.status.value}, {result.points:g}/{result.max_points:g}",
                      spec.id, result.status.value)
    return tuple(results[spec.id] for spec in checks)


def ensure_service_image(engine: Engine, options: GradingOptions) -> str:
    """The service image run.sh exercises run: a given tag, or service/ built once (then cached)."""
    if options.service_image:
        try:
            engine.client.images.get(options.service_image)
        except docker.errors.ImageNotFound:
            raise ServiceImageUnavailable(f"the service image {options.service_image} "
                                          f"(GENAI_SERVICE_IMAGE) does not exist") from None
        return options.service_image
    if not (SERVICE_DIR / "Dockerfile").is_file():
        raise ServiceImageUnavailable("service/Dockerfile is missing, so the service image cannot be built")
    progress.emit(progress.PHASE, "building the service image from service/ (once; later gradings reuse it)")
    result = engine.build(SERVICE_DIR, tag=SERVICE_IMAGE_TAG, labels=owner_labels(CACHE_LABEL, "service-image"),
                          timeout=options.build_timeout, no_cache=options.no_cache)
    if not result.ok:
        why = "timed out" if result.timed_out else result.failure_summary(3).replace("\n", " | ")
        raise ServiceImageUnavailable(f"the service image could not be built from service/ ({why})")
    return SERVICE_IMAGE_TAG


def prepare_environment(exercise: Exercise, engine: Engine, options: GradingOptions) -> Environment:
    model = None
    if "model" in exercise.needs:
        model = models_dir()
        if not (model / "model.onnx").is_file():
            raise ModelMissing(f"the exported model is not in {model}; run `make model`")
    image = ensure_service_image(engine, options) if "service_image" in exercise.needs else None
    return Environment(model, image)


def resolve_workspace(exercise: Exercise, workspace: Path | str | None) -> Path:
    path = Path(workspace) if workspace is not None else starter_dir(exercise.id)
    if not path.is_dir():
        raise WorkspaceUnreadable(f"the workspace {path} does not exist or is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise WorkspaceUnreadable(f"the workspace {path} cannot be read")
    try:
        next(path.iterdir(), None)
    except OSError as exc:
        raise WorkspaceUnreadable(f"the workspace {path} cannot be read ({exc.strerror})") from None
    return path.resolve()


def with_prerequisites(exercise: Exercise, check_ids: Iterable[str]) -> tuple[CheckSpec, ...]:
    """These checks and every check they need, directly or not, in the exercise's order."""
    specs = {c.id: c for c in exercise.checks}
    unknown = [cid for cid in check_ids if cid not in specs]
    if unknown:
        raise KeyError(f"{exercise.id} has no check {unknown[0]!r}")
    wanted: set[str] = set()
    todo = list(check_ids)
    while todo:
        cid = todo.pop()
        if cid not in wanted:
            wanted.add(cid)
            todo += list(specs[cid].requires)
    return tuple(c for c in exercise.checks if c.id in wanted)


@dataclass
class Grading:
    """An open grading: the session that owns its resources, and the context its checks read."""
    exercise: Exercise
    workspace: Path
    session: GradingSession
    context: Any


@contextmanager
def open_grading(exercise_id: str, workspace: Path | str | None = None, options: GradingOptions | None = None,
                 *, engine: Engine | None = None,
                 announce: Callable[[str], None] | None = None) -> Iterator[Grading]:
    """Everything a grading needs, assembled once: the workspace checked, the machine's model and
    service image, the lock where the exercise fixes names, one session that owns every resource
    (compose projects plug into it), and the exercise's context. All of it goes on exit, also
    after an error or Ctrl-C; an engine this opened is closed."""
    exercise = registry.get(exercise_id)
    options = options or GradingOptions.from_env()
    path = resolve_workspace(exercise, workspace)
    own_engine = engine is None
    engine = engine or Engine.connect()
    try:
        environment = prepare_environment(exercise, engine, options)
        with GradingSession(engine, options, exercise.id, announce) as session:
            session.claim(exercise.fixed_names)  # takes the grading lock where the exercise fixes names
            yield Grading(exercise, path, session, exercise.make_context(session, path, environment))
    finally:
        if own_engine:
            engine.close()


def grade(exercise_id: str, workspace: Path | str | None = None, options: GradingOptions | None = None, *,
          only: Iterable[str] | None = None, engine: Engine | None = None,
          announce: Callable[[str], None] | None = None) -> ExerciseReport:
    """Grade `exercise_id` in `workspace` (default: the exercise's starter folder); the one call the
    CLI, the notebooks, the tests and the grading box use. `only`: these checks and what they need.
    Raises CannotGrade (exit 2). What the cleanup could not remove is in the report."""
    start = time.monotonic()
    with open_grading(exercise_id, workspace, options, engine=engine, announce=announce) as grading:
        checks = grading.exercise.checks if only is None else with_prerequisites(grading.exercise, only)
        results = run_checks(checks, grading.context)
    session = grading.session  # closed now: its cleanup has run
    return ExerciseReport(grading.exercise.id, grading.exercise.title, str(grading.workspace), results,
                          time.monotonic() - start, session.id, tuple(session.cleanup_errors))
