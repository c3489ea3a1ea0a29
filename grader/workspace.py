"""Exercise workspaces: the starter files, plus files shared with service/.

The service's source has one home, service/. Exercises whose workspace holds
the service (03, 05-08) get copies of those files: `python -m grader
sync` puts them into exercises/<id>/ where they are missing (the copies are
git-ignored), and `materialize` assembles a complete workspace elsewhere
(starter + shared files + optionally the reference solution) for tests. The
reference solutions of 05-08 are the service's own files (SOLUTION_FILES).
Which files are shared, and where starters and solutions live, course.yaml says.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from course.manifest import load

# exercise id -> {path in the workspace: path in the repository}, as course.yaml states them
_COURSE = load()
SHARED_FILES: dict[str, dict[str, str]] = {e.id: dict(e.shared) for e in _COURSE.exercises if e.shared}
# The reference solutions of 05-08 are the service's own files: one source, no copies in solutions/.
SOLUTION_FILES: dict[str, dict[str, str]] = {e.id: dict(e.solution_files) for e in _COURSE.exercises
                                             if e.solution_files}

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache")


def starter_dir(exercise_id: str) -> Path:
    """Where course.yaml's layout puts the exercise's starter files."""
    return _COURSE.path(_COURSE.exercise(exercise_id).workspace)


def solution_dir(exercise_id: str) -> Path:
    return _COURSE.path(_COURSE.exercise(exercise_id).solution)


def _copy(src: Path, dest: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dest, ignore=_IGNORED, dirs_exist_ok=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)


def overlay(src: Path, dest: Path) -> None:
    """Copy the files of `src` over `dest` (a solution, or a test fixture over a solution)."""
    for item in sorted(src.iterdir()):
        _copy(item, dest / item.name)


def _sources(table: dict[str, dict[str, str]], exercise_id: str) -> dict[str, Path]:
    found = {}
    for rel, source in table.get(exercise_id, {}).items():
        path = _COURSE.path(Path(source))
        if not path.exists():
            raise FileNotFoundError(f"{source} is missing: the workspace of {exercise_id} needs it")
        found[rel] = path
    return found


def shared_sources(exercise_id: str) -> dict[str, Path]:
    """The shared files of an exercise, as {workspace path: source path}; raises if a source is missing."""
    return _sources(SHARED_FILES, exercise_id)


def solution_sources(exercise_id: str) -> dict[str, Path]:
    """Reference solution files kept outside solutions/ (the service's own), as {workspace path: source}."""
    return _sources(SOLUTION_FILES, exercise_id)


def materialize(exercise_id: str, dest: Path, with_solution: bool = False) -> Path:
    """Assemble a workspace in `dest`: starter files, shared files, and the solution on top if asked."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shared = shared_sources(exercise_id)
    starter = starter_dir(exercise_id)
    if not starter.is_dir():
        raise FileNotFoundError(f"no starter files for {exercise_id} in {starter}")
    for item in sorted(starter.iterdir()):
        if item.name in shared or item.name == ".ipynb_checkpoints":
            continue  # shared copies in the starter folder may be stale: take the source
        _copy(item, dest / item.name)
    for rel, source in shared.items():
        _copy(source, dest / rel)
    if with_solution:
        if solution_dir(exercise_id).is_dir():
            overlay(solution_dir(exercise_id), dest)
        for rel, source in solution_sources(exercise_id).items():
            _copy(source, dest / rel)
    return dest


def fill_shared(exercise_id: str, dest: Path, force: bool = False) -> list[Path]:
    """Copy the exercise's shared files into `dest` where they are missing (all of them with force)."""
    created = []
    for rel, source in shared_sources(exercise_id).items():
        target = Path(dest) / rel
        if target.exists() and not force:
            continue
        if target.is_dir() and force:
            shutil.rmtree(target)
        _copy(source, target)
        created.append(target)
    return created


def sync(exercise_ids: list[str] | None = None, force: bool = False) -> list[Path]:
    """`python -m grader sync`: fill exercises/<id>/ with its shared files (they are git-ignored)."""
    created = []
    for exercise_id in SHARED_FILES:
        if exercise_ids is None or exercise_id in exercise_ids:
            created += fill_shared(exercise_id, starter_dir(exercise_id), force)
    return created


def missing_shared(exercise_id: str, workspace: Path) -> list[str]:
    return [rel for rel in SHARED_FILES.get(exercise_id, {}) if not (workspace / rel).exists()]
