"""The solution regions of the exercise notebooks 05-08 hold the service's own files
(grader.workspace.SOLUTION_FILES), so that nbgrader's instructor version is the reference.

After a change to those service files, rewrite the regions with
    .venv/bin/python -m tests.grader.notebook_solutions
"""

from __future__ import annotations

import re
import sys

import nbformat

from grader.options import REPO_ROOT
from grader.workspace import SOLUTION_FILES, solution_sources

EXERCISES = tuple(SOLUTION_FILES)
REGION = re.compile(r"\A%%writefile (\S+)\n### BEGIN SOLUTION\n(.*)### END SOLUTION\s*\Z", re.S)


def notebook_path(exercise_id: str):
    return REPO_ROOT / "exercises" / exercise_id / f"{exercise_id}.ipynb"


def regions(nb) -> dict[str, str]:
    """{file the cell writes: the text of its solution region}."""
    found = {}
    for cell in nb.cells:
        m = REGION.match(cell.source) if cell.cell_type == "code" else None
        if m:
            found[m.group(1)] = m.group(2)
    return found


def sync(exercise_id: str) -> list[str]:
    """Rewrite the regions that differ from the service's files; the names of those rewritten."""
    path = notebook_path(exercise_id)
    nb = nbformat.read(path, as_version=4)
    sources = solution_sources(exercise_id)
    changed = []
    for cell in nb.cells:
        m = REGION.match(cell.source) if cell.cell_type == "code" else None
        if m and m.group(1) in sources:
            text = sources[m.group(1)].read_text()
            if text != m.group(2):
                cell.source = f"%%writefile {m.group(1)}\n### BEGIN SOLUTION\n{text}### END SOLUTION"
                changed.append(m.group(1))
    if changed:
        nbformat.write(nb, path)
    return changed


def main() -> int:
    for exercise_id in EXERCISES:
        for name in sync(exercise_id):
            print(f"{notebook_path(exercise_id).relative_to(REPO_ROOT)}: {name} rewritten from the service")
    return 0


if __name__ == "__main__":
    sys.exit(main())
