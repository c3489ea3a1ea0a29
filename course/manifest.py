"""The course manifest (course.yaml): lessons and exercises in order.

`load()` validates the file and returns frozen dataclasses; `python -m
course.manifest` prints the course outline, `--markdown` the README's table.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "course.yaml"
LAYOUT_KEYS = ("workspace", "notebook", "solution", "fixtures")


class ManifestError(ValueError):
    """course.yaml is missing, malformed or inconsistent."""


NEEDS = frozenset({"model", "service_image"})


@dataclass(frozen=True)
class FixedNames:
    """Resources a learner's run.sh creates under names the exercise fixes."""
    containers: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.containers or self.volumes or self.networks)


@dataclass(frozen=True)
class Exercise:
    """Every fact about one exercise; the grader, the workspaces and the grading box read them here."""
    id: str
    title: str
    deliverables: tuple[str, ...]
    lesson: str  # id of the lesson that prepares it
    workspace: Path  # relative to the repository root, like the other paths
    notebook: Path
    solution: Path
    fixtures: Path
    needs: frozenset[str] = frozenset()          # what the machine provides: model, service_image
    images: tuple[str, ...] = ()                 # base images its builds and stacks use
    fixed_names: FixedNames = FixedNames()
    shared: Mapping[str, str] = field(default_factory=dict)          # workspace path -> repo path
    solution_files: Mapping[str, str] = field(default_factory=dict)  # workspace path -> repo path
    # workspace path -> the learner's earlier files it continues ("<exercise id>/<path>"), best first;
    # the given checkpoint (checkpoint/<path>) when the learner has none of them
    starts_from: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the learner's earlier Dockerfiles whose image run.sh runs, best first; else the reference image
    image_from: tuple[str, ...] = ()
    checkpoint: Path = Path()  # the given checkpoints of starts_from's files
    # why no grading box can grade it (make release/autograde leave it out); "" for a class exercise
    self_paced: str = ""

    def continued(self) -> tuple[str, ...]:
        """The files of starts_from this exercise does not grade: inputs it builds on."""
        return tuple(rel for rel in self.starts_from if rel not in self.deliverables)


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    notebook: Path
    exercises: tuple[Exercise, ...]

    @property
    def slug(self) -> str:
        return self.notebook.stem


@dataclass(frozen=True)
class Course:
    title: str
    lessons: tuple[Lesson, ...]
    root: Path

    @property
    def exercises(self) -> tuple[Exercise, ...]:
        return tuple(e for lesson in self.lessons for e in lesson.exercises)

    def lesson(self, lesson_id: str) -> Lesson:
        for lesson in self.lessons:
            if lesson.id == lesson_id:
                return lesson
        raise KeyError(f"no lesson {lesson_id!r} in the course (ids: {', '.join(x.id for x in self.lessons)})")

    def exercise(self, exercise_id: str) -> Exercise:
        for e in self.exercises:
            if e.id == exercise_id:
                return e
        raise KeyError(f"no exercise {exercise_id!r} in the course")

    def path(self, relative: Path) -> Path:
        return self.root / relative

    def sequence(self) -> list[Lesson | Exercise]:
        """Everything in the order a learner meets it: each lesson, then what it prepares."""
        found: list[Lesson | Exercise] = []
        for lesson in self.lessons:
            found += [lesson, *lesson.exercises]
        return found


def _require(mapping: dict, key: str, where: str, kind: type = str):
    if not isinstance(mapping, dict) or key not in mapping:
        raise ManifestError(f"{where}: missing {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ManifestError(f"{where}: {key!r} must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ManifestError(f"{where} must be a list of names")
    return tuple(value)


def _paths(value: Any, where: str) -> Mapping[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ManifestError(f"{where} must map a path in the workspace to a path in the repository")
    return MappingProxyType(dict(value))


def _earlier_files(value: Any, where: str, earlier: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A list of "<exercise id>/<deliverable>" naming deliverables of exercises met before this one."""
    files = _names(value, where)
    for entry in files:
        exercise_id, _, rel = entry.partition("/")
        if exercise_id not in earlier:
            raise ManifestError(f"{where}: {entry!r} must name an earlier exercise, as <exercise id>/<file>")
        if rel not in earlier[exercise_id]:
            raise ManifestError(f"{where}: {rel!r} is not a file {exercise_id} has the learner write "
                                f"(deliverables: {', '.join(earlier[exercise_id])})")
    return files


def _facts(ex: dict[str, Any], where: str, earlier: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """The optional facts of an exercise: needs, images, fixed names, shared and solution files."""
    needs = frozenset(_names(ex.get("needs", []), f"{where}.needs"))
    if needs - NEEDS:
        raise ManifestError(f"{where}.needs: unknown {sorted(needs - NEEDS)} (known: {sorted(NEEDS)})")
    names = ex.get("fixed_names") or {}
    if not isinstance(names, dict) or set(names) - {"containers", "volumes", "networks"}:
        raise ManifestError(f"{where}.fixed_names maps containers, volumes and networks to lists of names")
    starts = ex.get("starts_from") or {}
    if not isinstance(starts, dict) or not all(isinstance(k, str) and k for k in starts):
        raise ManifestError(f"{where}.starts_from maps a path in the workspace to a list of earlier files")
    shared = _paths(ex.get("shared", {}), f"{where}.shared")
    if set(starts) & set(shared):
        raise ManifestError(f"{where}: {sorted(set(starts) & set(shared))} cannot be both shared and started from")
    return {
        "needs": needs,
        "images": _names(ex.get("images", []), f"{where}.images"),
        "fixed_names": FixedNames(**{kind: _names(v, f"{where}.fixed_names.{kind}") for kind, v in names.items()}),
        "shared": shared,
        "solution_files": _paths(ex.get("solution_files", {}), f"{where}.solution_files"),
        "starts_from": MappingProxyType({rel: _earlier_files(v, f"{where}.starts_from.{rel}", earlier)
                                         for rel, v in starts.items()}),
        "image_from": _earlier_files(ex.get("image_from", []), f"{where}.image_from", earlier),
        "self_paced": _reason(ex.get("self_paced", ""), f"{where}.self_paced"),
    }


def _reason(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where} is the reason the exercise is self-paced only, as text")
    return value.strip()


def parse(data: dict, root: Path = ROOT) -> Course:
    """Validate the manifest's data and build the Course."""
    if not isinstance(data, dict):
        raise ManifestError("course.yaml must hold a mapping at its top level")
    title = _require(data, "title", "course.yaml")
    layout = _require(data, "layout", "course.yaml", dict)
    for key in LAYOUT_KEYS:
        if "{id}" not in _require(layout, key, "layout"):
            raise ManifestError(f"layout.{key} must contain {{id}}")
    checkpoints = layout.get("checkpoint")  # needed once an exercise starts from earlier files
    if checkpoints is not None and (not isinstance(checkpoints, str) or "{id}" not in checkpoints):
        raise ManifestError("layout.checkpoint must contain {id}")
    lessons: list[Lesson] = []
    seen_ex: dict[str, tuple[str, ...]] = {}  # exercise id -> its deliverables, in order
    for n, raw in enumerate(_require(data, "lessons", "course.yaml", list), 1):
        where = f"lessons[{n - 1}]"
        lesson_id = _require(raw, "id", where)
        if lesson_id != f"{n:02d}":
            raise ManifestError(f"{where}: lesson ids run 01, 02, ... in order; expected {n:02d}, got {lesson_id}")
        notebook = Path(_require(raw, "notebook", where))
        if notebook.parent != Path("lessons") or not re.fullmatch(rf"{lesson_id}-[a-z0-9-]+\.ipynb", notebook.name):
            raise ManifestError(f"{where}: notebook must be lessons/{lesson_id}-<topic>.ipynb, not {notebook}")
        exercises = []
        for m, ex in enumerate(raw.get("exercises") or []):
            ex_where = f"{where}.exercises[{m}]"
            ex_id = _require(ex, "id", ex_where)
            if not re.fullmatch(r"\d\d-[a-z0-9-]+", ex_id):
                raise ManifestError(f"{ex_where}: exercise ids look like 01-first-image, not {ex_id!r}")
            if ex_id in seen_ex:
                raise ManifestError(f"{ex_where}: exercise {ex_id} is listed twice")
            expected_number = len(seen_ex) + 1
            if int(ex_id[:2]) != expected_number:
                raise ManifestError(f"{ex_where}: exercises are numbered in order; expected "
                                    f"{expected_number:02d}-..., got {ex_id}")
            deliverables = tuple(_require(ex, "deliverables", ex_where, list))
            ws, nb, solution, fixtures = (Path(layout[key].format(id=ex_id)) for key in LAYOUT_KEYS)
            facts = _facts(ex, ex_where, seen_ex)
            if facts["starts_from"] and checkpoints is None:
                raise ManifestError(f"{ex_where}: starts_from needs layout.checkpoint, where the given "
                                    f"checkpoints are")
            exercises.append(Exercise(ex_id, _require(ex, "title", ex_where), deliverables, lesson_id, ws, nb,
                                      solution, fixtures, checkpoint=Path((checkpoints or "").format(id=ex_id)),
                                      **facts))
            seen_ex[ex_id] = deliverables
        lessons.append(Lesson(lesson_id, _require(raw, "title", where), notebook, tuple(exercises)))
    if not lessons:
        raise ManifestError("course.yaml lists no lessons")
    return Course(title, tuple(lessons), Path(root))


def load(path: Path = MANIFEST) -> Course:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path} is not valid YAML: {exc}") from None
    return parse(data, Path(path).resolve().parent)


def markdown_table(course: Course) -> str:
    """The README's table of lessons and the exercises each prepares."""
    rows = ["| # | lesson | exercise |", "| --- | --- | --- |"]
    for lesson in course.lessons:
        exercises = ", ".join(f"`{e.workspace.as_posix()}`" for e in lesson.exercises)
        rows.append(f"| {int(lesson.id)} | `{lesson.notebook.as_posix()}` | {exercises} |".replace("|  |", "| |"))
    return "\n".join(rows)


def outline(course: Course) -> str:
    lines = [course.title]
    for lesson in course.lessons:
        lines.append(f"  lesson {lesson.id}  {lesson.title:<32} {lesson.notebook.as_posix()}")
        for e in lesson.exercises:
            lines.append(f"    exercise {e.id:<16} {e.title:<38} {e.notebook.as_posix()}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the course outline from course.yaml")
    parser.add_argument("--markdown", action="store_true", help="the README's table of lessons and exercises")
    args = parser.parse_args(argv)
    try:
        course = load()
    except ManifestError as exc:
        print(f"manifest: {exc}", file=sys.stderr)
        return 2
    print(markdown_table(course) if args.markdown else outline(course))
    return 0


if __name__ == "__main__":
    sys.exit(main())
