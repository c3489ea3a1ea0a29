"""Exercises and their checks, registered by the modules of `grader.exercises`.

A check is a small function `check(ctx) -> Passed` that raises `CheckFailed`
(through `fail`) when the learner's work misses the expectation. It is
registered on its exercise with its points, the checks it needs (a check whose
prerequisite did not pass is skipped), and three tiers of hints (grader.hints):
the concept with the lesson section that teaches it, the problem found (templates
over the failure's evidence), and the exact fix.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, NoReturn

from course.manifest import Course, load
from course.manifest import FixedNames as FixedNames
from grader.errors import CheckFailed, CheckSkipped, UnknownExercise
from grader.hints import Tiers


@dataclass(frozen=True)
class Passed:
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def passed(message: str, **evidence: Any) -> Passed:
    return Passed(message, MappingProxyType(evidence))


def fail(message: str, *, hint: str | None = None, notes: tuple[str, ...] | list[str] = (),
         **evidence: Any) -> NoReturn:
    raise CheckFailed(message, evidence, hint=hint, notes=tuple(notes))


def skip(message: str, **evidence: Any) -> NoReturn:
    """The host cannot evaluate this check (no GPU, say): skipped, and not counted in the score."""
    raise CheckSkipped(message, evidence)


CheckFunction = Callable[[Any], Passed]
LEGACY_CONCEPT = "This check looks at one thing: {summary}."  # tier 1 of a check declared with hint= alone


@dataclass(frozen=True)
class CheckSpec:
    id: str
    points: float
    summary: str          # what passing means, shown by `list` and in notebooks
    tiers: Tiers          # the hints for a lost point: concept (ends with the lesson section), problem, fix
    requires: tuple[str, ...]
    run: CheckFunction

    @property
    def hint(self) -> str:
        """The one-text hint (the fix, and where the lesson teaches it)."""
        return f"{self.tiers.fix} {self.tiers.concept[self.tiers.concept.rfind('(see '):]}"


@functools.lru_cache(maxsize=1)
def course() -> Course:
    """course.yaml: every fact about each exercise (one source)."""
    return load()


class Exercise:
    """One exercise: what it needs from the machine and its checks, in order.

    Its facts (title, deliverables, lesson, needs, fixed names) come from the course manifest."""

    def __init__(self, id: str) -> None:
        manifest = course()
        try:
            entry = manifest.exercise(id)
        except KeyError:
            raise ValueError(f"exercise {id} is not in course.yaml") from None
        self.id = id
        self.facts = entry                            # the manifest's entry: everything it knows
        self.title = entry.title
        self.deliverables = entry.deliverables        # the files the learner writes
        self.lesson_path = manifest.lesson(entry.lesson).notebook.as_posix()
        self.needs = entry.needs
        self.fixed_names = entry.fixed_names
        self.checks: list[CheckSpec] = []
        self._context_factory: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"Exercise({self.id!r}, {len(self.checks)} checks)"

    @property
    def max_score(self) -> float:
        return float(sum(c.points for c in self.checks))

    def see(self, section: str) -> str:
        return f"see {self.lesson_path}, section \u201c{section}\u201d"

    def context(self, factory: Callable[..., Any]) -> Callable[..., Any]:
        """Register `factory(session, workspace, environment) -> ctx`, the object checks receive."""
        self._context_factory = factory
        return factory

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        if self._context_factory is None:
            raise TypeError(f"exercise {self.id} has no context factory")
        return self._context_factory(*args, **kwargs)

    def check(self, check_id: str, *, points: float, summary: str, section: str, concept: str | None = None,
              problem: str | tuple[str, ...] = (), fix: str | None = None, hint: str | None = None,
              requires: tuple[str, ...] = ()) -> Callable[[CheckFunction], CheckFunction]:
        """Register a check. Its hints: `concept` (tier 1, no command line; the lesson `section` is
        appended), `problem` (tier 2: templates over the failure's evidence, the first whose keys are all
        there is used) and `fix` (tier 3). `hint=` alone is the older one-text form, taken as the fix."""
        if any(c.id == check_id for c in self.checks):
            raise ValueError(f"{self.id}: check {check_id} registered twice")
        known = {c.id for c in self.checks}
        missing = [r for r in requires if r not in known]
        if missing:  # prerequisites come first, so running in order respects them
            raise ValueError(f"{self.id}/{check_id}: prerequisites {missing} must be registered before it")
        if points <= 0:
            raise ValueError(f"{self.id}/{check_id}: points must be positive")
        fix = fix or hint
        if not fix:
            raise ValueError(f"{self.id}/{check_id}: a check needs its fix (tier 3)")
        templates = (problem,) if isinstance(problem, str) else tuple(problem)
        tiers = Tiers(f"{concept or LEGACY_CONCEPT.format(summary=summary)} ({self.see(section)})",
                      templates or (f"Your work does not do this yet: {summary}.",), fix)

        def register(func: CheckFunction) -> CheckFunction:
            self.checks.append(CheckSpec(check_id, float(points), summary, tiers, tuple(requires), func))
            return func
        return register


_EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    if exercise.id in _EXERCISES and _EXERCISES[exercise.id] is not exercise:
        raise ValueError(f"exercise {exercise.id} registered twice")
    _EXERCISES[exercise.id] = exercise
    return exercise


def _load_all() -> None:
    """Import every module of grader.exercises: each registers its exercise."""
    import grader.exercises as package
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")


def all_exercises() -> list[Exercise]:
    _load_all()
    return [_EXERCISES[k] for k in sorted(_EXERCISES)]


def get(exercise_id: str) -> Exercise:
    _load_all()
    try:
        return _EXERCISES[exercise_id]
    except KeyError:
        known = ", ".join(sorted(_EXERCISES)) or "none"
        raise UnknownExercise(f"no exercise {exercise_id!r} (known: {known})") from None
