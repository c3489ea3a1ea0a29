"""Grade one exercise: prepare what it needs, run its checks in order, return the report."""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import docker.errors
import requests.exceptions
from docker.utils.build import PatternMatcher  # the Docker SDK's own reading of .dockerignore

from dockerkit.labels import CACHE_LABEL, owner_labels
from grader import hints, progress, registry, workspace as workspaces
from grader.engine import Engine
from grader.exercises._compose_config import grading_variables
from grader.exercises._compose_project import ComposeProject
from grader.errors import (CannotGrade, CheckFailed, CheckSkipped, EngineUnavailable, GraderBug,
                           ModelMissing, NotReady, ServiceImageUnavailable, WorkspaceUnreadable)
from grader.options import (SERVICE_DIR, SERVICE_IMAGE_TAG, GradingOptions,
                            models_dir)
from grader.registry import CheckSpec, Exercise
from grader.results import CheckResult, ExerciseReport, Status
from grader.runner import GradingSession
from grader.wait import wait_for_http
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
            tiers = hints.failure_tiers(spec.tiers, failure.evidence, failure.message, failure.hint,
                                         failure.notes)
            result = hints.show(CheckResult(spec.id, Status.FAILED, 0.0, spec.points, failure.message, "",
                                            failure.evidence, time.monotonic() - start, tiers),
                                hints.FEEDBACK_TIERS)
        except CheckSkipped as skipped:  # the host lacks what the check needs: not counted
            result = CheckResult(spec.id, Status.SKIPPED, 0.0, 0.0, skipped.message, "",
                                 skipped.evidence, time.monotonic() - start)
        except (CannotGrade, KeyboardInterrupt):
            raise
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            if isinstance(exc, docker.errors.APIError) and exc.response is not None:
                # the engine refused something the learner's work asks for (a bad USER, say)
                evidence = {"engine_error": str(exc)}
                result = hints.show(CheckResult(spec.id, Status.FAILED, 0.0, spec.points,
                                                f"the engine refused: {exc.explanation or exc}", "", evidence,
                                                time.monotonic() - start,
                                                hints.failure_tiers(spec.tiers, evidence)),
                                    hints.FEEDBACK_TIERS)
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


def with_checkpoints(exercise: Exercise, path: Path, session: GradingSession,
                     environment: Environment) -> tuple[Path, list[str]]:
    """The folder the checks read: the workspace itself, or a copy with the given checkpoint in place of
    a file the exercise builds on but does not grade (course.yaml's starts_from less its deliverables)
    where the workspace lacks it or the learner's own would make this exercise pay for an earlier one:
    each kind has its trial (a Dockerfile: its image serves; a compose file: `docker compose config`
    accepts it; a .dockerignore: it lets the service's code through). The learner's file stays where
    the checkpoint fails the same trial: the fault is then in this exercise's own files. Nothing is
    written into the learner's folder. A checkpoint built on the reference image names the one in use."""
    notices: list[str] = []
    replaced: dict[str, str] = {}  # file -> why (empty: only retagged)
    for rel in exercise.facts.continued():
        checkpoint = workspaces.checkpoint(exercise.id, rel)
        why: str | None = None
        if not (path / rel).exists():
            replaced[rel] = (f"{rel} is not in your workspace: graded with the given checkpoint {workspaces.shown(checkpoint)} "
                             f"(`python -m grader start {exercise.id}` puts your own or that one in place)")
            continue
        if _same(path / rel, checkpoint):
            if environment.service_image not in (None, SERVICE_IMAGE_TAG):
                replaced[rel] = ""
            continue
        kind = trial_kind(rel)
        if kind == "Dockerfile" and environment.service_image and environment.models_dir:
            # the learner's own image serves the stack when it can; its faults are not this exercise's
            image, why = _serving_image(session, environment, rel, path / rel, healthcheck=True)
            if image is not None:
                notices.append(f"the stack runs the image of your {rel} (it builds and answers /health)")
                why = None
        elif kind == "compose":
            why = _compose_refusal(exercise, rel, path, session, environment)
        elif kind == ".dockerignore":
            why = _dockerignore_refusal(exercise, rel, path)
        if why:
            replaced[rel] = f"graded with the given checkpoint {workspaces.shown(checkpoint)} in place of your {rel}: {why}"
    if not replaced:
        return path, notices
    copy = session.tmpdir() / path.name
    shutil.copytree(path, copy, symlinks=True, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for rel, why in replaced.items():
        _put_checkpoint(exercise, rel, copy, environment)
        if why:
            notices.append(why)
    return copy, notices


def _same(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:  # a folder, or unreadable: not the checkpoint
        return False


def _put_checkpoint(exercise: Exercise, rel: str, folder: Path, environment: Environment) -> None:
    """The checkpoint in place of `rel` in a folder of the session's (never the learner's)."""
    target = folder / rel
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    target.unlink(missing_ok=True)
    text = workspaces.checkpoint(exercise.id, rel).read_text()
    target.write_text(text.replace(SERVICE_IMAGE_TAG, environment.service_image) if environment.service_image
                      else text)


def trial_kind(rel: str) -> str | None:
    """The trial a continued file gets, by its kind ("Dockerfile", "compose", ".dockerignore"); None: none."""
    name = Path(rel).name
    if name in ("Dockerfile", ".dockerignore"):
        return name
    if name.endswith((".yaml", ".yml")) and name.startswith(("compose", "docker-compose")):
        return "compose"
    return None


def _compose_refusal(exercise: Exercise, rel: str, path: Path, session: GradingSession,
                     environment: Environment) -> str | None:
    """Why the learner's compose file cannot be the base of this exercise's configuration, or None.
    Tried as the exercise's checks read it (with its own compose files merged over it, and the grading's
    variables), and first alone: a file compose refuses by itself is the earlier exercise's fault, whatever
    this one merges over it. It is refused only where the checkpoint passes the same `config`."""
    overrides = tuple(d for d in exercise.deliverables if trial_kind(d) == "compose" and (path / d).is_file())
    progress.emit(progress.PHASE, f"asking docker compose whether it accepts your {rel}")
    variables = grading_variables(environment.models_dir)
    mine = ComposeProject(session, path, variables)
    given: ComposeProject | None = None
    for files in dict.fromkeys([(rel,), (rel, *overrides)]):
        error = _compose_error(mine, files)
        if error is None:
            continue
        if given is None:
            given = ComposeProject(session, path, variables)
            _put_checkpoint(exercise, rel, given.dir, environment)
        if _compose_error(given, files) is not None:
            return None  # refused with the checkpoint too: this exercise's checks report what compose says
        return f"`docker compose -f {' -f '.join(files)} config` refuses it ({error})"
    return None


def _compose_error(project: ComposeProject, files: tuple[str, ...]) -> str | None:
    """compose's first error line for `config` on these files (paths in the grading's copy left out), or None."""
    try:
        project.config(files)
    except CheckFailed as failure:
        output = str(failure.evidence.get("output") or failure.message)
        lines = [ln.strip() for ln in output.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("WARN") and "level=warning" not in ln]
        return (lines[0] if lines else failure.message).replace(f"{project.dir}/", "")[:200]
    return None


def dockerignore_excludes(dockerignore: Path, paths: Iterable[str]) -> list[str]:
    """Which of these build-context paths the .dockerignore keeps out of the context."""
    lines = [line.strip() for line in dockerignore.read_text(errors="replace").splitlines()]
    matcher = PatternMatcher([line for line in lines if line and not line.startswith("#")])
    return [p for p in paths if matcher.matches(p)]


def _dockerignore_refusal(exercise: Exercise, rel: str, path: Path) -> str | None:
    """Why the learner's .dockerignore cannot be this exercise's, or None: it keeps out of the build
    context a file of the service's code the build copies, where the checkpoint does not."""
    # the service's code the builds copy; not the Dockerfiles: BuildKit reads a Dockerfile that
    # .dockerignore keeps out all the same (the service's own allow-list keeps out every Dockerfile)
    needed = workspaces.shared_files(exercise.id)
    try:
        excluded = dockerignore_excludes(path / rel, needed)
    except OSError as exc:
        excluded, why = needed, f"it cannot be read ({exc.strerror or exc})"
    else:
        shown = ", ".join(excluded[:3]) + (f" and {len(excluded) - 3} more" if len(excluded) > 3 else "")
        why = f"it keeps {shown} out of the build context, which the build needs"
    if not excluded or dockerignore_excludes(workspaces.checkpoint(exercise.id, rel), needed):
        return None
    return why


def own_service_image(exercise: Exercise, path: Path, session: GradingSession,
                      environment: Environment) -> tuple[Environment, str]:
    """The image run.sh runs, and the notice that says which: built from the learner's own earlier
    Dockerfile (course.yaml's image_from, in a sibling workspace) when it builds the service and
    answers GET /health with the model mounted, else the reference service image."""
    reference = f"the reference service image {environment.service_image}"
    if session.options.reference_image:
        return environment, f"run.sh ran {reference} (GENAI_GRADER_REFERENCE_IMAGE is set)"
    reasons = []
    for entry in exercise.facts.image_from:
        dockerfile, why = workspaces.learners_own(entry, path)
        if dockerfile is None:
            reasons.append(why)
            continue
        image, why = _serving_image(session, environment, entry, dockerfile)
        if image is not None:
            return replace(environment, service_image=image), f"run.sh ran the image built from your {entry}"
        reasons.append(why)
    return environment, f"run.sh ran {reference}: {'; '.join(reasons)}"


def _serving_image(session: GradingSession, environment: Environment, entry: str, dockerfile: Path, *,
                   healthcheck: bool = False) -> tuple[str | None, str]:
    """(image tag, "") of the learner's Dockerfile built around the service's code, once it serves (and
    declares a HEALTHCHECK, where a stack waits for its health); else (None, why not). The image and its
    trial container belong to the session."""
    context = session.tmpdir() / "service"
    shutil.copytree(SERVICE_DIR / "app", context / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy2(SERVICE_DIR / name, context / name)
    shutil.copy2(dockerfile, context / "Dockerfile")
    progress.emit(progress.PHASE, f"building your {entry} around the service's code, to see whether it serves")
    built = session.build(context, dockerfile=context / "Dockerfile")
    if not built.ok:
        how = "did not build in time" if built.timed_out else "does not build the service"
        first = " | ".join(built.failure_summary(2).split("\n")).strip()
        return None, f"your {entry} {how}" + (f" ({first[:200]})" if first else "")
    declared = ((session.client.images.get(built.tag).attrs.get("Config") or {}).get("Healthcheck") or {})
    if healthcheck and (declared.get("Test") or ["NONE"])[0] == "NONE":
        return None, f"the image of your {entry} declares no HEALTHCHECK, which the stack's health needs"
    container = session.run(built.tag, publish=8000,
                            volumes={str(environment.models_dir): {"bind": "/models", "mode": "ro"}})
    try:
        wait_for_http(f"http://127.0.0.1:{session.host_port(container, 8000)}/health",
                      timeout=session.options.start_timeout, http_timeout=session.options.http_timeout,
                      container=container, what=f"the image of your {entry}")
    except NotReady as exc:
        return None, f"the image of your {entry} does not answer GET /health with the model mounted ({exc})"
    finally:
        container.remove(force=True, v=True)
    return built.tag, ""


@dataclass
class Grading:
    """An open grading: the session that owns its resources, and the context its checks read."""
    exercise: Exercise
    workspace: Path
    session: GradingSession
    context: Any
    notices: tuple[str, ...] = ()  # what it used in place of the learner's files


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
            graded, notices = with_checkpoints(exercise, path, session, environment)
            if exercise.facts.image_from and environment.service_image:
                environment, notice = own_service_image(exercise, path, session, environment)
                notices.append(notice)
            yield Grading(exercise, path, session, exercise.make_context(session, graded, environment),
                          tuple(notices))
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
                          time.monotonic() - start, session.id, tuple(session.cleanup_errors), grading.notices)
