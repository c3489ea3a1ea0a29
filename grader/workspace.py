"""Exercise workspaces: the starter files, the service's code, and the files that continue the
learner's earlier exercises.

The service's source has one home, service/. Exercises whose workspace builds the service
(03, 05-08) get copies of its code (course.yaml's `shared`, never an answer): `python -m
grader sync` puts them into exercises/<id>/ where they are missing (the copies are
git-ignored). A file that continues an earlier exercise (course.yaml's `starts_from`:
the Dockerfile grown from 01 to 08, the compose files of 05) is seeded by `python -m
grader start <id>` from the learner's own earlier file in a sibling workspace (the
exercises folder, or nbgrader's fetched assignments), else from the given checkpoint
(checkpoints/<id>/), with one notice per file; nothing ever writes over an existing file.
`materialize` assembles a complete workspace elsewhere (starter + shared files +
checkpoints + optionally the reference solution) for tests. The reference solutions of
05-08 are the service's own files (SOLUTION_FILES).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
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
    for rel in STARTS_FROM.get(exercise_id, {}):  # a learner who starts afresh: the checkpoints
        if not (dest / rel).exists():
            _copy(checkpoint(exercise_id, rel), dest / rel)
    if with_solution:
        if solution_dir(exercise_id).is_dir():
            overlay(solution_dir(exercise_id), dest)
        for rel, source in solution_sources(exercise_id).items():
            _copy(source, dest / rel)
    return dest


def shared_files(exercise_id: str) -> list[str]:
    """The files of the service's code that sync copies into the workspace, as paths in it."""
    found = []
    for rel, source in shared_sources(exercise_id).items():
        if not source.is_dir():
            found.append(rel)
            continue
        for folder, dirs, names in os.walk(source):
            skipped = _IGNORED(folder, dirs + names)
            dirs[:] = sorted(d for d in dirs if d not in skipped)
            base = Path(rel) / Path(folder).relative_to(source)
            found += [(base / n).as_posix() for n in sorted(names) if n not in skipped]
    return found


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


# -- the learner's path: files that continue an earlier exercise ----------------------------------

STARTS_FROM: dict[str, dict[str, tuple[str, ...]]] = {e.id: dict(e.starts_from) for e in _COURSE.exercises
                                                      if e.starts_from}


def checkpoint(exercise_id: str, rel: str) -> Path:
    """The given checkpoint of a file the exercise continues (course.yaml's layout.checkpoint)."""
    path = _COURSE.path(_COURSE.exercise(exercise_id).checkpoint) / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path.relative_to(_COURSE.root)} is missing: the workspace of {exercise_id} "
                                f"starts from it")
    return path


@cache
def _shipped(exercise_id: str, rel: str) -> bytes | None:
    """The file as the course ships it to a learner who has not touched it: its checkpoint, else the
    committed starter (git's copy: the one in exercises/ may be the learner's own by now). A learner
    who commits their work makes it git's copy: only a copy that still holds a TODO is a starter."""
    if rel in STARTS_FROM.get(exercise_id, {}):
        return checkpoint(exercise_id, rel).read_bytes()
    committed = (_COURSE.exercise(exercise_id).workspace / rel).as_posix()
    try:
        text = subprocess.run(["git", "-C", str(_COURSE.root), "show", f"HEAD:{committed}"], capture_output=True,
                              check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return text if b"TODO" in text else None


def earlier_file(entry: str, workspace: Path) -> Path:
    """Where "<exercise id>/<file>" is for the learner working in `workspace`: in the sibling workspace
    of that exercise (exercises/<id>/, or nbgrader's fetched <course>/<id>/)."""
    exercise_id, _, rel = entry.partition("/")
    return Path(workspace).resolve().parent / exercise_id / rel


def learners_own(entry: str, workspace: Path) -> tuple[Path | None, str]:
    """(the learner's earlier file, "") when it exists and is their work, else (None, why not)."""
    path = earlier_file(entry, workspace)
    exercise_id, _, rel = entry.partition("/")
    if not path.is_file():
        return None, f"you have no {entry}"
    try:
        content = path.read_bytes()
    except OSError as exc:
        return None, f"your {entry} cannot be read ({exc.strerror})"
    if not content.strip() or content == _shipped(exercise_id, rel):
        return None, f"your {entry} is still the starter"
    return path, ""


@dataclass(frozen=True)
class Seed:
    """Where one file of a workspace starts from."""
    name: str                # path in the workspace
    source: Path | None      # None: the file was already there
    yours: bool              # the learner's own earlier file, not the checkpoint
    why: str = ""            # why not the learner's own (when the checkpoint)
    service: bool = False    # the service's code (shared), not a file of the learner's

    @property
    def notice(self) -> str:
        if self.service and self.source is not None:
            return f"{self.name}: the service's code, copied from {shown(self.source)}"
        if self.source is None:
            return f"{self.name}: already there, left as it is"
        if self.yours:
            return f"{self.name}: started from your {shown(self.source)}"
        return f"{self.name}: started from the given checkpoint {shown(self.source)} ({self.why})"


def shown(path: Path) -> str:
    """A course file as the learner reads it in a message: its path in the course."""
    try:
        return path.resolve().relative_to(_COURSE.root).as_posix()
    except ValueError:
        return f"{path.parent.name}/{path.name}"


def seed_source(exercise_id: str, rel: str, workspace: Path) -> Seed:
    """Where `rel` would start from: the first of the learner's earlier files that is theirs, else the
    checkpoint (saying why)."""
    reasons = []
    for entry in STARTS_FROM[exercise_id][rel]:
        path, why = learners_own(entry, workspace)
        if path is not None:
            return Seed(rel, path, True)
        reasons.append(why)
    return Seed(rel, checkpoint(exercise_id, rel), False, "; ".join(reasons))


def start(exercise_id: str, workspace: Path | None = None) -> list[Seed]:
    """`python -m grader start`: put every missing file of the workspace in place (the service's code,
    then each file that continues an earlier exercise) and say where each started from. A file that
    exists is never written; running it again changes nothing."""
    dest = Path(workspace) if workspace is not None else starter_dir(exercise_id)
    if not dest.is_dir():
        raise FileNotFoundError(f"the workspace {dest} does not exist or is not a folder")
    shared = {dest / rel: source for rel, source in shared_sources(exercise_id).items()}
    seeds = [Seed(target.relative_to(dest).as_posix(), shared[target], False, service=True)
             for target in fill_shared(exercise_id, dest)]
    for rel in STARTS_FROM.get(exercise_id, {}):
        target = dest / rel
        if target.exists() or target.is_symlink():
            seeds.append(Seed(rel, None, False))
            continue
        seed = seed_source(exercise_id, rel, dest)
        source = seed.source or checkpoint(exercise_id, rel)
        try:
            with open(target, "xb") as out:  # exclusive: never over a file that appeared meanwhile
                out.write(source.read_bytes())
        except FileExistsError:
            seed = Seed(rel, None, False)
        else:
            os.chmod(target, source.stat().st_mode & 0o777)
        seeds.append(seed)
    return seeds


def image_notice(exercise_id: str) -> str | None:
    """What an exercise that runs the service says of the image its run.sh gets."""
    image_from = _COURSE.exercise(exercise_id).image_from
    if not image_from:
        return None
    return (f"run.sh runs the image of your {' (else your '.join(image_from)}{')' * (len(image_from) - 1)} "
            f"when it builds and serves, else the reference service image; the report says which")


def missing_inputs(exercise_id: str, workspace: Path) -> list[str]:
    """Files the exercise builds on but does not grade (a Dockerfile for 05) that the workspace lacks."""
    return [rel for rel in _COURSE.exercise(exercise_id).continued() if not (Path(workspace) / rel).exists()]
