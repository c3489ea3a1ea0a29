"""nbgrader's source folder, generated at release time: one source per thing.

The learner's notebook (exercises/<id>/<id>.ipynb) holds no solution and no hidden
test; the reference solutions live in solutions/<id>/ (and, for 05-08, in the
service files course.yaml maps as `solution_files`). `make release` writes
source/<id>/ from those: the exercise folder as the learner gets it (starters,
notebook; never a file that continues an earlier exercise: the notebook's first cell
seeds it from the learner's own earlier file, else from checkpoints/), with the
notebook made into nbgrader's source form:

- each cell that shows a deliverable (`show_file(...)`) becomes a solution cell
  whose solution region quotes the reference file as comments, so the
  instructor's version shows it and ClearSolutions releases the cell without it
  (the region is never executable: no notebook writes a deliverable);
- the first autograded cell gets the hidden test region that makes autograding
  grade afresh instead of reusing results kept in the kernel.

source/ is git-ignored and rewritten by every release; nothing in it is edited by hand.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from course.instructor import settings
from course.manifest import load as load_course

SHOW_FILE = re.compile(r'^show_file\("(?P<exercise>[\w-]+)", "(?P<name>[^"]+)"\)\s*$', re.M)
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS\n"
                "# Autograding grades afresh: results kept in this kernel do not count.\n"
                "import grader.notebook\n"
                "grader.notebook.forget()\n"
                "### END HIDDEN TESTS\n")
# What ClearSolutions leaves in a released show cell (nbgrader_config.py sets it as the code stub).
RELEASED_STUB = "# Write this file in the editor and save it: Check my work grades it as saved."
_IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", ".pytest_cache",
                                  ".genai-course")


class SourceError(Exception):
    """The learner notebook and the reference solutions do not fit together."""


def reference_files(exercise_id: str) -> dict[str, Path]:
    """{deliverable: the reference file}: solutions/<id>/ first, else the service file course.yaml maps."""
    course = load_course()
    exercise = course.exercise(exercise_id)
    found = {}
    for name in exercise.deliverables:
        path = course.path(exercise.solution) / name
        if not path.is_file() and name in exercise.solution_files:
            path = course.path(Path(exercise.solution_files[name]))
        if not path.is_file():
            raise SourceError(f"{exercise_id}: no reference solution for {name}")
        found[name] = path
    return found


def _grade_id(name: str) -> str:
    return "reference_" + re.sub(r"\W", "_", name).strip("_")


def _solution_region(text: str) -> str:
    quoted = "\n".join(f"# {line}".rstrip() for line in text.rstrip("\n").splitlines())
    return ("### BEGIN SOLUTION\n# The reference solution (instructor's version only; no cell writes it):\n"
            f"{quoted}\n### END SOLUTION")


def source_notebook(learner: NotebookNode, exercise_id: str) -> NotebookNode:
    """The nbgrader source form of a learner notebook (a new notebook; `learner` is unchanged)."""
    nb = nbformat.from_dict(learner)
    references = reference_files(exercise_id)
    shown, hidden_added = set(), False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if "BEGIN SOLUTION" in cell.source or "BEGIN HIDDEN TESTS" in cell.source:
            raise SourceError(f"{exercise_id}: the learner notebook holds a marked region; it must hold none")
        match = SHOW_FILE.search(cell.source)
        if match and match.group("exercise") == exercise_id:
            name = match.group("name")
            if name not in references:
                raise SourceError(f"{exercise_id}: the notebook shows {name}, which is not a deliverable")
            cell.source = cell.source.rstrip("\n") + "\n" + _solution_region(references[name].read_text())
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": _grade_id(name), "locked": False,
                                         "schema_version": 3, "solution": True}
            shown.add(name)
        elif cell.metadata.get("nbgrader", {}).get("grade") and not hidden_added:
            head, _, last = cell.source.rstrip("\n").rpartition("\n")
            cell.source = f"{head}\n{HIDDEN_TESTS}{last}" if head else f"{HIDDEN_TESTS}{last}"
            hidden_added = True
    missing = set(references) - shown
    if missing:
        raise SourceError(f"{exercise_id}: the notebook shows no cell for {', '.join(sorted(missing))}")
    if not hidden_added:
        raise SourceError(f"{exercise_id}: the notebook has no autograded cell")
    nbformat.validate(nb)
    return nb


def generate(exercise_id: str, root: Path | None = None) -> Path:
    """Write <root>/source/<id>/ from <root>/exercises/<id>/ and the reference solutions."""
    root = Path(root or settings.course_root())
    exercise = load_course().exercise(exercise_id)
    learner_dir = root / exercise.workspace
    notebook = root / exercise.notebook
    dest = root / settings.SOURCE_DIRECTORY / exercise_id
    if dest.exists():
        shutil.rmtree(dest)
    seeded = set(exercise.starts_from)  # the learner's own: their notebook's first cell seeds them

    def ignored(folder: str, names: list[str]) -> set[str]:
        mine = {n for n in names if Path(folder) == learner_dir and n in seeded}
        return set(_IGNORED(folder, names)) | mine

    shutil.copytree(learner_dir, dest, ignore=ignored, symlinks=True)
    learner = nbformat.read(notebook, as_version=4)
    nbformat.write(source_notebook(learner, exercise_id), dest / notebook.relative_to(learner_dir))
    return dest
